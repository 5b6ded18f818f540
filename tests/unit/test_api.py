"""The public surface: small, declared, and light to import."""

from __future__ import annotations

import subprocess
import sys

import concursus_lab as cl

#: Submodules reachable as attributes but not part of the surface one learns.
IMPLEMENTATION = {
    "annotations",
    "cli",
    "services",
    "spark",  # an extra, an attribute only once `import concursus_lab.spark` has run
    "testing",
    "widgets",
    # the layers with no public face of their own: their names are re-exported here
    "common",
    "events",
    "timetravel",
    "delivery",
    "projections",
    "mapping",
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
        assert issubclass(getattr(cl.exceptions, name), cl.ConcursusLabError)


def test_the_surface_is_small():
    namespaces = {"exceptions", "frame", "live", "plot", "results", "sample", "sources"}
    assert namespaces <= set(cl.__all__)
    assert len(set(cl.__all__) - namespaces) <= 35  # about thirty names to learn


def test_every_error_class_is_in_exceptions_and_only_two_at_the_top():
    import inspect

    errors = {
        n
        for n, c in inspect.getmembers(cl.exceptions, inspect.isclass)
        if issubclass(c, cl.ConcursusLabError)
    }
    assert {"SchemaError", "SourceUnavailable", "IncompleteRead"} <= errors
    at_top = {n for n in cl.__all__ if n in errors}
    assert at_top == {"ConcursusLabError", "IncompleteRead"}
