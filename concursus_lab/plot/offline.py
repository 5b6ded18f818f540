"""Vega for the browser without the internet: altair's JupyterChart, bundle cached on disk.

Shared by :func:`concursus_lab.plot.offline` and the widgets.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def enable_offline() -> None:
    """``JupyterChart.enable_offline()``, with vl-convert's bundle cached on disk.

    Bundling Vega for the browser takes vl-convert 5 to 10 s in every new kernel; the
    bundle depends only on the altair and vl-convert versions, so it is kept under
    ``$XDG_CACHE_HOME/concursus-lab`` (``~/.cache``) and read back next time. Where
    JupyterChart's offline switch is not what this expects, altair's own call is used.
    """
    from altair import JupyterChart

    if getattr(JupyterChart, "_is_offline", None) is True:
        return
    cache = _bundle_path()
    if cache is not None and cache.exists() and hasattr(JupyterChart, "_is_offline"):
        JupyterChart._esm = cache.read_text()
        JupyterChart._is_offline = True
        return
    JupyterChart.enable_offline(offline=True)
    if cache is not None and isinstance(getattr(JupyterChart, "_esm", None), str):
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(JupyterChart._esm)
            partial.replace(cache)
        except OSError:  # a read-only home: bundle again next time
            pass


def _bundle_path() -> Path | None:
    try:
        import altair
        import vl_convert
        from altair.jupyter.jupyter_chart import load_js_src

        key = "\n".join((altair.__version__, vl_convert.__version__, load_js_src()))
    except (ImportError, AttributeError, OSError):
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "concursus-lab" / f"jupyterchart-offline-{digest}.js"
