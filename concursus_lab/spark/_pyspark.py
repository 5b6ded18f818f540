"""pyspark, imported only when used, and what differs between its releases.

``import concursus_lab`` never loads pyspark; everything in :mod:`concursus_lab.spark` asks
:func:`pyspark` first, which names the extra to install when it is missing. Collecting a
Spark DataFrame as Arrow is public from Spark 4 (``DataFrame.toArrow``); on 3.5 it is the
private ``_collect_as_arrow`` that ``toPandas`` itself uses: both are in :func:`collect_arrow`,
the one place that knows.

Spark sends a reducer, its state class and its event types to its Python workers pickled by
the cloudpickle it bundles; a class of a notebook or a script (``__main__``) is pickled by
value and rebuilt there. pyspark 3.5 bundles cloudpickle 2.2, which pickled the markers a
dataclass keeps on each field (``dataclasses._FIELD``, ...) as new objects: the rebuilt class
had its fields, but ``dataclasses.fields(cls)`` (which compares the markers by identity) was
``()``, so a state's fields vanished from the answer and ``dataclasses.asdict`` gave ``{}``.
:func:`pyspark` teaches that pickler what cloudpickle 3 (pyspark 4) does: a marker is pickled
by its name and rebuilt as the worker's own ``dataclasses`` marker.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import pyarrow as pa

from concursus_lab.common.optional import require

#: The pyspark release the extra pins, and whose Scala suffix the connectors' jars match.
PYSPARK = "3.5.9"


@functools.cache
def pyspark() -> Any:
    """The pyspark package, or an error that says how to install it (its pickler then
    keeps a dataclass's fields: see the module docstring)."""
    found = require(
        "pyspark",
        "pyspark.sql",
        needed_by="Spark questions",
        extra="spark",
        hint=f" (pyspark {PYSPARK}), or use a session of your own cluster: see docs/spark.md.",
    )
    _keep_dataclass_fields()
    return found


def _keep_dataclass_fields() -> None:
    """Have pyspark's bundled cloudpickle pickle dataclass field markers by name."""
    try:
        from pyspark.cloudpickle.cloudpickle_fast import CloudPickler
    except ImportError:  # pyspark 4: cloudpickle 3, which does it itself
        return
    table = getattr(CloudPickler, "_dispatch_table", None)
    marker = getattr(dataclasses, "_FIELD_BASE", None)
    if isinstance(table, dict) and marker is not None:
        table.setdefault(marker, _field_marker)


def _field_marker(marker: Any) -> tuple:
    """A dataclass field marker, rebuilt as the unpickling process's own (by its name)."""
    return getattr, (dataclasses, marker.name)


def collect_arrow(frame: Any) -> pa.Table:
    """A Spark DataFrame's rows as one Arrow table, in the session's time zone (UTC)."""
    schema = frame.schema
    if hasattr(frame, "toArrow"):  # Spark 4
        return frame.toArrow()
    from pyspark.sql.pandas.types import to_arrow_schema

    with warnings.catch_warnings():  # pyspark 3.5 compares versions with distutils' classes
        warnings.simplefilter("ignore", DeprecationWarning)
        batches = frame._collect_as_arrow()
    arrow_schema = to_arrow_schema(schema)
    if not batches:
        return arrow_schema.empty_table()
    return pa.Table.from_batches(batches).cast(arrow_schema)
