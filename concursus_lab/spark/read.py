"""Events into Spark: :func:`read` a Cassandra table or a Kafka topic where it lives, or hand a
local frame over with :func:`from_polars`; :func:`to_polars` brings a Spark DataFrame back.

``read("cassandra://host:9042/keyspace")`` and ``read("kafka://host:9092/topic")`` give a
:class:`SparkEvents`: ``.frame``, a Spark DataFrame in the canonical schema (every delivery:
a question's ``duplicates=`` decides which counts), and ``.quarantine``, the rows or records
that did not decode, with the local source's columns and a reason. Both are lazy: nothing is
read until an action runs, and each action reads again (``.frame.cache()`` keeps it).

For example::

    import concursus_lab.spark as cls
    spark = cls.session()
    topic = cls.read("kafka://127.0.0.1:9092/parcel-events", spark, aggregate_type="parcel")
    topic.frame.count(), topic.quarantine.count()
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from typing import Any

import polars as pl

from concursus_lab.common.time import TimeLike, optional_utc
from concursus_lab.exceptions import SourceError
from concursus_lab.frame.schema import validate
from concursus_lab.spark import cassandra as _cassandra
from concursus_lab.spark import kafka as _kafka
from concursus_lab.spark._pyspark import collect_arrow, pyspark
from concursus_lab.spark.arrow import spark_schema, to_arrow
from concursus_lab.spark.one_pass import register


@dataclasses.dataclass(frozen=True)
class SparkEvents:
    """A read on Spark: the events (``frame``) and what did not decode (``quarantine``)."""

    frame: Any
    quarantine: Any
    url: str

    def to_polars(self) -> pl.DataFrame:
        """The events, collected: the frame the local source's ``.events(duplicates="keep")``
        gives, in its row order."""
        order = ["kafka_partition", "kafka_offset"] if "kafka_offset" in self.frame.columns else []
        return to_polars(self.frame).sort(order or ["aggregate_type", "aggregate_id"])


#: The schemes of Kafka topics: Concursus JSON, your own shape, or a schema registry's.
_KAFKA = ("kafka", "kafka+registry")


def read(
    url: str,
    spark: Any = None,
    *,
    aggregate_type: str | None = None,
    aggregate_ids: Iterable[str] | str | None = None,
    since: TimeLike | None = None,
    **options: Any,
) -> SparkEvents:
    """The events at ``url`` as a Spark DataFrame; see the module docstring.

    Parameters
    ----------
    url
        ``cassandra://host1,host2:9042/keyspace`` (Concursus's ``Event`` table) or
        ``kafka://host1:9092,host2:9092/topic``. Credentials come from the same
        environment variables as the local sources'.
    spark
        The SparkSession (default: the active one, else :func:`~concursus_lab.spark.session`).
    aggregate_type, aggregate_ids
        Only these events: both together are pushed down to Cassandra as its partition key;
        ids select Kafka records by key before they are decoded.
    since
        Kafka only: the events processed at or after this time, as the local source's
        ``.events(since=...)`` gives them. The read starts where that processing time begins
        in each partition, so a recent slice of a long topic costs little.
    options
        Kafka only: how the local source opens the topic, ``mapping=`` (a topic of your own
        shape), ``registry=`` / ``schemas=`` (Avro, Protobuf, JSON Schema values); each
        batch of records is decoded on the executors by that source's own decoder, so Spark
        reads what ``cl.open(url, **options).events()`` reads.
    """
    spark = spark or _active()
    scheme = url.partition("://")[0].lower()
    since_at = optional_utc(since, "since")
    if options and scheme not in _KAFKA:
        raise SourceError(
            f"options {sorted(options)} are for Kafka topics of your own shape or of a schema "
            f"registry; {url!r} takes none."
        )
    if since_at is not None and scheme not in _KAFKA:
        raise SourceError(
            f"`since` seeks a Kafka topic by processing time; {url!r} is not one. For a "
            "Cassandra table, filter the frame: "
            "events.frame.filter(F.col('processing_timestamp') >= since)."
        )
    if scheme == "cassandra":
        decoded, plan = _cassandra.read(spark, url, aggregate_type, aggregate_ids)
        F = pyspark().sql.functions
        frame = decoded.filter(F.col("reason").isNull()).drop("reason")
        return SparkEvents(register(frame, plan), _cassandra.quarantine_of(decoded), url)
    if scheme in _KAFKA:
        decoded, plan = _kafka.read(spark, url, aggregate_type, aggregate_ids, since_at, **options)
        frame = _kafka.frame_of(decoded)
        if plan is not None:
            register(frame, plan)
        return SparkEvents(frame, _kafka.quarantine_of(decoded), url)
    raise SourceError(
        f"Spark reads cassandra:// and kafka:// URLs, got {url!r}; for a local store or a "
        "file, read it with cl.open(...).events() and hand it over with from_polars()."
    )


def _active() -> Any:
    spark = pyspark().sql.SparkSession.getActiveSession()
    if spark is not None:
        return spark
    from concursus_lab.spark.session import session

    return session()


def from_polars(frame: pl.DataFrame, spark: Any = None) -> Any:
    """A canonical polars frame as a Spark DataFrame, with a ``__row`` column that keeps its
    row order (ties between deliveries are then broken as they are locally)."""
    validate(frame, check_parameters=False)
    spark = spark or _active()
    numbered = frame.with_row_index("__row").with_columns(pl.col("__row").cast(pl.Int64))
    numbered = numbered.select(*frame.columns, "__row")
    with warnings.catch_warnings():  # pyspark 3.5 asks pandas 3 what it has deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        table = to_arrow(numbered).to_pandas()
        return spark.createDataFrame(table, schema=spark_schema(numbered.schema))


def to_polars(frame: Any) -> pl.DataFrame:
    """A Spark DataFrame, collected through Arrow, as polars (times UTC, microseconds)."""
    return pl.from_arrow(collect_arrow(frame))  # type: ignore[return-value]
