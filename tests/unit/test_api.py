"""The public surface: small, declared, and light to import."""

from __future__ import annotations

import subprocess
import sys

import concursus_lab as cl

#: Submodules reachable as attributes but not part of the surface one learns.
IMPLEMENTATION = {
    "annotations", "exceptions", "sources", "cli", "services", "testing", "widgets",
    # the layers: internal folders, whose public names are re-exported here
    "common", "frame", "events", "timetravel", "delivery", "projections",
}


def test_all_is_exactly_the_public_surface():
    # isidentifier: pytest's assertion rewriting (the package is a pytest plugin) adds
    # "@py_builtins" and "@pytest_ar" to the module's namespace
    public = {n for n in dir(cl) if n.isidentifier() and not n.startswith("_")} - IMPLEMENTATION
    assert public == set(cl.__all__), (
        f"public but not in __all__: {sorted(public - set(cl.__all__))}; "
        f"in __all__ but missing: {sorted(set(cl.__all__) - public)}"
    )
    assert len(cl.__all__) == len(set(cl.__all__))


def test_import_is_light_and_quiet():
    code = (
        "import sys, concursus_lab; "
        "heavy = [m for m in ('cassandra', 'kafka', 'altair', 'jupyterlab', 'ipywidgets', "
        "'anywidget', 'pandas') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""


def test_errors_share_one_root():
    for name in (
        "SchemaError",
        "DecodeError",
        "SourceError",
        "SourceUnavailable",
        "IncompleteRead",
        "MissingDependency",
        "ServiceError",
    ):
        assert issubclass(getattr(cl, name), cl.ConcursusLabError)
