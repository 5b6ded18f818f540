"""Optional dependencies: imported when first needed, or a clear error with the pip line.

Each kind of source needs its own client (the Cassandra driver, kafka-python, redis-py, pika,
hazelcast-python-client, pyspark), installed with an extra of this package. None is imported
until a source of its kind is opened, and a missing one is a
:class:`~concursus_lab.exceptions.MissingDependency` naming the module and the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from concursus_lab.exceptions import MissingDependency


def require(*modules: str, needed_by: str, extra: str, hint: str = "") -> ModuleType:
    """Import every one of ``modules`` and return the first.

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
        raise MissingDependency(
            f"{needed_by} need {exc.name}, which is not installed: "
            f"pip install 'concursus-lab[{extra}]'{hint}"
        ) from exc
    return found[0]
