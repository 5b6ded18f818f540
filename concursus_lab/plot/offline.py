"""Vega for the browser without the internet: altair's JupyterChart, and a standalone page's
script, each bundled by vl-convert once and cached on disk.

Shared by :func:`concursus_lab.plot.offline`, :func:`concursus_lab.plot.save` and the widgets.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from concursus_lab.plot import altair_private
from concursus_lab.plot.libraries import lab

#: Options for vega-embed, in the widgets and in saved pages: draw with SVG (marks are
#: elements), keep "save as PNG/SVG", drop the links to the online editor.
EMBED_OPTIONS = {
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
    "renderer": "svg",
}


def enable_offline() -> None:
    """``JupyterChart.enable_offline()``, with vl-convert's bundle cached on disk.

    Bundling Vega for the browser takes vl-convert 5 to 10 s in every new kernel; the
    bundle depends only on the altair and vl-convert versions, so it is kept under
    ``$XDG_CACHE_HOME/concursus-lab`` (``~/.cache``) and read back next time. Where
    JupyterChart's offline switch is not what this expects, altair's own call is used.
    """
    if altair_private.offline_enabled():
        return
    cache = _jupyterchart_bundle_path()
    if cache is not None and cache.exists() and altair_private.set_offline_script(
        cache.read_text()
    ):
        return
    lab("altair").JupyterChart.enable_offline(offline=True)
    script = altair_private.offline_script()
    if cache is not None and script is not None:
        _keep(cache, script)


def vega_embed_script() -> str:
    """The script that defines ``vegaEmbed`` (with Vega and Vega-Lite) for a page that loads
    nothing: vl-convert's bundle for altair's Vega-Lite version, cached on disk like
    :func:`enable_offline`'s (bundling takes vl-convert about 6 s)."""
    altair = lab("altair")
    vl_convert = lab("vl_convert")

    version = _vl_version()
    key = "\n".join(("vega-embed", altair.__version__, vl_convert.__version__, version))
    cache = _cache_file("vega-embed", key, ".js")
    if cache.exists():
        return cache.read_text()
    script = vl_convert.javascript_bundle(vl_version=version)
    _keep(cache, script)
    return script


def _vl_version() -> str:
    """vl-convert's name of altair's Vega-Lite version: ``v6_4`` for schema ``v6.4.1``."""
    return "_".join(lab("altair").SCHEMA_VERSION.split(".")[:2])


def _jupyterchart_bundle_path() -> Path | None:
    script = altair_private.widget_script()
    if script is None:
        return None
    key = "\n".join((lab("altair").__version__, lab("vl_convert").__version__, script))
    return _cache_file("jupyterchart-offline", key, ".js")


def _cache_file(kind: str, key: str, suffix: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "concursus-lab" / f"{kind}-{digest}{suffix}"


def _keep(cache: Path, text: str) -> None:
    """Write ``text`` to ``cache`` whole (a temporary file, then a rename), or not at all."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(cache)
    except OSError:  # a read-only home: bundle again next time
        pass
