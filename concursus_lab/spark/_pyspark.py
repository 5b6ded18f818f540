"""pyspark, imported only when used, and the two pyspark APIs that differ between releases.

``import concursus_lab`` never loads pyspark; everything in :mod:`concursus_lab.spark` asks
:func:`pyspark` first, which names the extra to install when it is missing. Collecting a
Spark DataFrame as Arrow is public from Spark 4 (``DataFrame.toArrow``); on 3.5 it is the
private ``_collect_as_arrow`` that ``toPandas`` itself uses: both are in :func:`collect_arrow`,
the one place that knows.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import pyarrow as pa

from concursus_lab.common.optional import require

#: The pyspark release the extra pins, and whose Scala suffix the connectors' jars match.
PYSPARK = "3.5.9"


@functools.cache
def pyspark() -> Any:
    """The pyspark package, or an error that says how to install it."""
    return require(
        "pyspark",
        "pyspark.sql",
        needed_by="Spark questions",
        extra="spark",
        hint=f" (pyspark {PYSPARK}), or use a session of your own cluster: see docs/spark.md.",
    )


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
