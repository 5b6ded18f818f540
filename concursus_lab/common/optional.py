"""Optional dependencies: imported when first needed, or a clear error with the pip line.

``pip install concursus-lab`` installs what ``import concursus_lab`` and the analysis need
(polars, pandas, pyarrow, NumPy, orjson, tqdm). Everything else comes with an extra, named
in pyproject.toml by who needs it: each source's client (the Cassandra driver, kafka-python,
redis-py, pika, hazelcast-python-client, pyspark, the registry's codecs), ``lab`` for what
you see (JupyterLab, the widgets, ``cl.plot``'s altair charts) and ``check`` for notebook CI
(``concursus-lab check``, ``concursus_lab.testing``). The package imports none of them with
an ``import`` statement: every one goes through :func:`require`, when first needed, and a
missing one is a :class:`~concursus_lab.exceptions.MissingDependency` naming the module and
the extra that installs it (``tests/unit/test_extras.py`` holds both rules).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from concursus_lab.exceptions import MissingDependency

#: The extra that installs each optional module (by its top-level import name).
EXTRAS: dict[str, str] = {
    "cassandra": "cassandra",
    "kafka": "kafka",
    "crc32c": "kafka",
    "redis": "redis",
    "pika": "rabbitmq",
    "hazelcast": "hazelcast",
    "pyspark": "spark",
    "fastavro": "registry",
    "google": "registry",  # google.protobuf
    "confluent_kafka": "registry",
    "altair": "lab",
    "vl_convert": "lab",
    "ipywidgets": "lab",
    "anywidget": "lab",
    "traitlets": "lab",
    "jupyterlab": "lab",
    "pytest": "check",
    "nbval": "check",
    "nbformat": "check",
    "hypothesis": "check",
}


def require(*modules: str, needed_by: str, extra: str | None = None, hint: str = "") -> ModuleType:
    """Import every one of ``modules`` and return the first.

    ``extra`` defaults to the one :data:`EXTRAS` names for the first module.

    >>> require("json", needed_by="this example", extra="none").__name__
    'json'
    >>> require("no_such_module", needed_by="Examples", extra="demo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.MissingDependency: Examples need no_such_module, ...[demo]'
    """
    try:
        found = [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        if extra is None:
            extra = EXTRAS.get(modules[0].partition(".")[0], "all")
        raise MissingDependency(
            f"{needed_by} need {exc.name}, which is not installed: "
            f"pip install 'concursus-lab[{extra}]'{hint}"
        ) from exc
    return found[0]
