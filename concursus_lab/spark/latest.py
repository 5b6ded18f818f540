"""``latest`` and ``index`` on Spark: each bucket answered by ``cl.latest`` itself.

Both are questions about each aggregate's causally last values (:mod:`concursus_lab.
timetravel.latest` states the rules). Every bucket of whole aggregates is answered by
``cl.latest``; the index then groups the aggregates by the value, across buckets, in Spark.
A parameter seen in only some buckets is null in the others, as it is locally for the
aggregates that never had it. A column's dtype follows the kinds of the values it shows
(:mod:`~concursus_lab.timetravel.parameter_values`): each bucket says which kinds it showed,
and when one bucket's integers meet another's strings, say, the buckets are asked again for
that parameter's JSON texts, as one local frame of all the events would show it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import conflicts
from concursus_lab.frame.cut import bounds
from concursus_lab.frame.identity import check_duplicates
from concursus_lab.frame.schema import empty
from concursus_lab.spark import buckets as _buckets
from concursus_lab.spark._pyspark import pyspark
from concursus_lab.spark.result import SparkFrame
from concursus_lab.timetravel.latest import by_value, latest_frame
from concursus_lab.timetravel.latest import index as local_index
from concursus_lab.timetravel.latest import latest as local_latest
from concursus_lab.timetravel.latest_buckets import FIXED
from concursus_lab.timetravel.parameter_values import mixed_kinds, typed_nulls


def _arrange(_name: str, columns: list[str]) -> list[str]:
    return [*FIXED, *sorted(c for c in columns if c not in FIXED)]


def _kept(events, at, known_at, duplicates, buckets, types=None) -> _buckets.Buckets:
    """Every bucket's ``cl.latest``, typed as one frame of all the events would be: a
    parameter whose kinds differ between buckets is asked again as JSON texts."""
    check_duplicates(duplicates, keep_means=None)
    at, known_at = bounds(at, known_at)

    def run(as_text: frozenset[str]) -> _buckets.Buckets:
        def answer(frame):
            view, kinds = latest_frame(
                frame, at, known_at, duplicates, as_text=as_text, nulls=False, types=types
            )
            return {"latest": view}, {"kinds": kinds}

        nothing = local_latest(empty())
        return _buckets.run(
            events, answer, empty={"latest": nothing}, buckets=buckets, arrange=_arrange
        )

    kept = run(frozenset())
    as_text = _mixed(kept.meta)
    if as_text:
        kept.unpersist()
        kept = run(as_text)
    conflicts.report(kept.conflicts)
    schema = kept.schemas["latest"]
    kept.schemas["latest"] = typed_nulls(pl.DataFrame(schema=schema)).schema
    return kept


def _mixed(metas: list[dict]) -> frozenset[str]:
    """The parameters some bucket gave as one kind's values while all buckets together
    show values that only JSON texts keep apart."""
    return mixed_kinds([meta.get("kinds", {}) for meta in metas])


def latest(
    events: Any,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    buckets: int | None = None,
    types: Any = None,
) -> SparkFrame:
    """:func:`concursus_lab.latest` on Spark: one row per aggregate, its latest values.

    ``events`` is a Spark DataFrame in the canonical schema; ``.to_polars()`` is exactly
    ``cl.latest(...)`` of the same events (``types=`` upcasts, as there). ``buckets`` as
    for :func:`~concursus_lab.spark.state_at`.
    """
    kept = _kept(events, at, known_at, duplicates, buckets, types)
    answer = SparkFrame(
        kept.frame("latest").orderBy("aggregate_type", "aggregate_id"),
        lambda: kept.polars("latest").sort("aggregate_type", "aggregate_id"),
        "latest values",
    )
    return kept.kept_for(answer)


def index(
    events: Any,
    parameter: str,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    buckets: int | None = None,
    types: Any = None,
) -> SparkFrame:
    """:func:`concursus_lab.index` on Spark: ``value`` and the sorted ``aggregate_ids``."""
    if not isinstance(parameter, str):
        raise SchemaError(f"`parameter` must be a parameter name, got {parameter!r}.")
    kept = _kept(events, at, known_at, duplicates, buckets, types)
    columns = list(kept.schemas["latest"])
    if parameter not in columns[len(FIXED) :]:
        _raise_unknown(parameter, columns[len(FIXED) :])
    F = pyspark().sql.functions
    pairs = kept.frame("latest").select("aggregate_id", F.col(parameter).alias("value"))
    grouped = (
        pairs.filter(F.col("value").isNotNull())
        .groupBy("value")
        .agg(F.array_sort(F.collect_list("aggregate_id")).alias("aggregate_ids"))
        .orderBy("value")
    )

    def collect() -> pl.DataFrame:
        return by_value(
            kept.polars("latest").select("aggregate_id", pl.col(parameter).alias("value"))
        )

    return kept.kept_for(SparkFrame(grouped, collect, f"aggregates by {parameter}"))


def _raise_unknown(parameter: str, seen: list[str]) -> None:
    """The error ``cl.index`` raises for a parameter no event has (it says it once)."""
    local_index(_one_event_with(seen), parameter)


def _one_event_with(keys: list[str]) -> pl.DataFrame:
    """One event whose parameters are ``keys``: ``cl.index`` then names them as seen."""
    now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    row = {
        "aggregate_type": "-",
        "aggregate_id": "-",
        "event_timestamp": now,
        "stream_id": "",
        "processing_id": None,
        "processing_timestamp": now,
        "name": "-",
        "version": "0",
        "parameters": orjson.dumps(dict.fromkeys(sorted(keys), 0)).decode(),
        "characteristics": 0,
    }
    return pl.DataFrame([row], schema=empty().schema)
