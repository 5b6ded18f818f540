"""Concursus JSON events into the canonical frame: Kafka records, Redis set members, RabbitMQ
messages (:mod:`~concursus_lab.sources.concursus_json_write` writes them).

Java Concursus writes one event, or a JSON array of them, per record value (or message, or
set member), in one of two layouts (``eventTimestamp`` is epoch milliseconds, ``parameters``
holds real JSON values)::

    flat (release 0.6)
    {"aggregateType":"person","aggregateId":"id1","name":"created","version":"0",
     "eventTimestamp":1459420277981,"streamId":"","processingId":"","characteristics":1,
     "parameters":{"name":"Arthur Putey"}}
    nested (later)
    {"metadata":{"aggregateType":"person", ... ,"characteristics":1},
     "parameters":{"name":"Arthur Putey"}}

:func:`decode` turns a batch of such values into canonical rows and says, for every value
it could not use, why. Nothing here knows about Kafka itself, so JSON-lines files can be
read with the same code.

Decoding is columnar: each value is parsed once with orjson, then every field is taken out
of all events at once, type-checked by the set of Python types seen, and handed to polars;
``parameters`` of the whole batch are written canonically (compact, keys sorted) in a single
``orjson.dumps`` call and cut apart again with NumPy. Python code runs per event only where
a value is bad, to name the reason.

>>> rows, bad = decode(
...     [b'{"aggregateType":"person","aggregateId":"id1","name":"created","version":"0",'
...      b'"eventTimestamp":1459420277981,"streamId":"","processingId":"",'
...      b'"characteristics":1,"parameters":{"name":"Arthur Putey"}}', b"not json"],
...     record_times=[1459420278000, 1459420278000],
... )
>>> rows.select("aggregate_id", "parameters", "record").rows()
[('id1', '{"name":"Arthur Putey"}', 0)]
>>> str(rows["event_timestamp"].item())
'2016-03-31 10:31:17.981000+00:00'
>>> bad.rows()
[(1, "not JSON: invalid literal, expected 'null': line 1 column 1 (char 0)")]
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import orjson
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.frame import canonical_json
from concursus_lab.frame.schema import INITIAL, NEITHER, SCHEMA, TERMINAL
from concursus_lab.frame.timeuuid import processing_time

#: Wire field -> canonical column, in the order Concursus writes them.
FIELDS: dict[str, str] = {
    "aggregateType": "aggregate_type",
    "aggregateId": "aggregate_id",
    "name": "name",
    "version": "version",
    "eventTimestamp": "event_timestamp",
    "streamId": "stream_id",
    "processingId": "processing_id",
    "characteristics": "characteristics",
}
#: Fields every event must carry (``parameters`` too); the others have Concursus defaults.
REQUIRED = ("aggregateType", "aggregateId", "name", "eventTimestamp")
DEFAULTS: dict[str, Any] = {"streamId": "", "version": "0", "characteristics": NEITHER}
_STRING_FIELDS = ("aggregateType", "aggregateId", "name", "version", "streamId", "processingId")
_INT_FIELDS = ("eventTimestamp", "characteristics")
_NONEMPTY = ("aggregateType", "aggregateId", "name")
# 9999-12-31T23:59:59.999Z: later (or negative beyond year 1) is not a real event time.
_MAX_MILLIS = 253_402_300_799_999
_MIN_MILLIS = -62_135_596_800_000
_DTYPES = {f: pl.Int64 if f in _INT_FIELDS else pl.String for f in FIELDS}

#: Columns of :func:`decode`'s second frame: which input value was bad, and why.
BAD_SCHEMA = pl.Schema({"record": pl.Int64, "reason": pl.String})


# -- decoding ------------------------------------------------------------------------------


def decode(
    values: Sequence[bytes | str | None],
    record_times: Sequence[int] | np.ndarray,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode a batch of Concursus JSON values into canonical rows.

    Parameters
    ----------
    values
        One JSON text per record (bytes or str); None for a record without a value.
    record_times
        Epoch milliseconds of each record (the Kafka record timestamp): the
        ``processing_timestamp`` of events whose ``processingId`` is not a time-based UUID.

    Returns
    -------
    events, bad
        ``events``: the canonical columns, then ``record`` (Int64), the index in ``values``
        of the value each row came from (an array value gives several rows with one index).
        ``bad``: ``record`` and ``reason`` for every value that was not used. A value is used
        whole or not at all: an array with one bad event is reported, none of it is kept.
    """
    n = len(values)
    times = np.asarray(record_times, dtype=np.int64)
    if times.shape != (n,):
        raise ValueError(f"`record_times` has {times.shape} entries for {n} values.")
    # measured, 1M events: kafka load 53-59% less time, codec.decode alone 60% (issue 14)
    with paused_gc():
        objects, records, arrays, bad = _parse(values)
        events, more_bad = _columns(objects, records, arrays)
        del objects  # freed before collections resume, so they never walk it
    bad.extend(more_bad)
    events = _exact_numbers(events, values)
    if bad:
        rejected = np.unique(np.fromiter((r for r, _ in bad), dtype=np.int64, count=len(bad)))
        keep = ~np.isin(events["record"].to_numpy(), rejected)
        if not keep.all():
            events = events.filter(pl.Series(keep))
    events = _finish(events, times)
    bad_frame = (
        pl.DataFrame(
            {"record": [r for r, _ in bad], "reason": [why for _, why in bad]}, schema=BAD_SCHEMA
        )
        .unique("record", keep="first", maintain_order=True)
        .sort("record")
    )
    return events, bad_frame


def _exact_numbers(events: pl.DataFrame, values: Sequence[bytes | str | None]) -> pl.DataFrame:
    """``parameters`` re-read exactly where orjson may have changed a number (a float, an
    integer beyond 64 bits): every number keeps the text the record holds."""
    risky = events["parameters"].str.contains(canonical_json.RISKY).fill_null(False)
    if not risky.any():
        return events
    record = events["record"].to_numpy()
    first = np.searchsorted(record, record)  # rows of one record are consecutive
    texts = events["parameters"].to_list()
    for row in np.flatnonzero(risky.to_numpy()).tolist():
        try:
            value = canonical_json.exact_loads(values[int(record[row])])
            event = value[row - int(first[row])] if type(value) is list else value
            texts[row] = canonical_json.dumps(event["parameters"])
        except (canonical_json.NotCanonical, KeyError, TypeError, IndexError):
            continue  # what the fast read made of it stands; the row checks judged it
    return events.with_columns(pl.Series("parameters", texts, dtype=pl.String))


def _parse(
    values: Sequence[bytes | str | None],
) -> tuple[list[Any], np.ndarray | None, set[int], list[tuple[int, str]]]:
    """JSON values -> event objects, the value index of each (None: one per value), the
    values that were arrays, and the bad values with their reasons."""
    loads = orjson.loads
    try:
        objects = [loads(v) for v in values]
    except (orjson.JSONDecodeError, TypeError):
        objects = None
    if objects is not None and set(map(type, objects)) <= {dict}:
        return objects, None, set(), []
    # The slow lane: some value is not one JSON object; find which, and expand arrays.
    bad: list[tuple[int, str]] = []
    events: list[Any] = []
    records: list[int] = []
    arrays: set[int] = set()
    for i, value in enumerate(values):
        if objects is not None:
            obj = objects[i]
        elif value is None:
            bad.append((i, "no value (a null record, e.g. a tombstone)"))
            continue
        else:
            try:
                obj = loads(value)
            except orjson.JSONDecodeError as exc:
                bad.append((i, f"not JSON: {exc}"))
                continue
            except TypeError:
                bad.append((i, f"not JSON: a value of type {type(value).__name__}"))
                continue
        if type(obj) is dict:
            events.append(obj)
            records.append(i)
        elif type(obj) is list:
            if not obj:
                bad.append((i, "an empty JSON array: no events"))
                continue
            odd = next((k for k, e in enumerate(obj) if type(e) is not dict), None)
            if odd is not None:
                bad.append((i, f"array element {odd} is {_kind(obj[odd])}, not an event object"))
                continue
            events.extend(obj)
            records.extend(repeat(i, len(obj)))
            arrays.add(i)
        else:
            bad.append((i, f"not an event: {_kind(obj)}"))
    return events, np.asarray(records, dtype=np.int64), arrays, bad


def _columns(
    objects: list[dict], records: np.ndarray | None, arrays: set[int]
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """Event objects -> raw columns (wire names) plus ``record``; and the bad ones, named.

    An object is flat when it has ``aggregateType`` at the top, nested otherwise.
    """
    n = len(objects)
    index = np.arange(n, dtype=np.int64) if records is None else records
    problems: dict[int, str] = {}  # position in `objects` -> first reason
    later: dict[int, str] = {}  # problems with `parameters`: named after layout and fields
    columns = _fast_fields(objects)
    if columns is None:
        columns = _careful_fields(objects, problems, later)

    frame = pl.DataFrame(columns).with_columns(pl.Series("record", index, dtype=pl.Int64))

    checks = _row_checks()
    flags = frame.select(expr.alias(str(i)) for i, expr in enumerate(checks.values()))
    failing = flags.select(pl.any_horizontal(pl.all())).to_series()
    if failing.any():
        for k in np.flatnonzero(failing.to_numpy()).tolist():
            hit = flags.row(k).index(True)
            reason = list(checks)[hit]
            if reason == _UNKNOWN_LAYOUT:
                keys = ", ".join(sorted(objects[k])[:6]) or "none"
                reason = f"{reason}; keys: {keys}"
            elif reason == _BAD_CHARACTERISTICS:
                reason = f"`characteristics` is {frame['characteristics'][k]}; {reason}"
            problems.setdefault(k, reason)
    for k, reason in later.items():
        problems.setdefault(k, reason)

    bad = []
    for k, why in problems.items():
        record = int(index[k])
        if record in arrays:
            why = f"array element {k - int(np.searchsorted(index, record))}: {why}"
        bad.append((record, why))
    return frame, bad


_FLAT = operator.itemgetter(*FIELDS, "parameters")
_NESTED = operator.itemgetter("metadata", "parameters")
_META = operator.itemgetter(*FIELDS)


def _fast_fields(objects: list[dict]) -> dict[str, pl.Series] | None:
    """Every field of every object, when all are one layout, complete and well typed.

    One C-level pass per object takes all its fields at once; None sends the batch down the
    careful lane, which names what is wrong with which object.
    """
    if not objects:
        return None
    try:
        if "aggregateType" in objects[0]:
            *fields, parameters = zip(*map(_FLAT, objects), strict=True)
        else:
            if any(map(operator.contains, objects, repeat("aggregateType"))):
                return None
            metas, parameters = zip(*map(_NESTED, objects), strict=True)
            fields = list(zip(*map(_META, metas), strict=True))
    except (KeyError, TypeError):
        return None
    columns = {}
    for field, values in zip(FIELDS, fields, strict=True):
        if field in _INT_FIELDS and not set(map(type, values)) <= {int}:
            return None
        try:
            columns[field] = pl.Series(field, values, dtype=_DTYPES[field], strict=True)
        except (TypeError, OverflowError, pl.exceptions.ComputeError):
            return None
    too_deep: dict[int, str] = {}
    canonical = canonical_json.dumps_objects(parameters, too_deep)
    if canonical is None or too_deep:  # the careful lane names what is wrong
        return None
    columns["parameters"] = canonical
    return columns


def _careful_fields(
    objects: list[dict], problems: dict[int, str], later: dict[int, str]
) -> dict[str, pl.Series]:
    """Like :func:`_fast_fields` for any objects: what is wrong goes to ``problems`` (and
    to ``later`` for ``parameters``) and becomes null; missing fields and bad values are
    left to the row checks."""
    metas: list[Any] = [o if "aggregateType" in o else o.get("metadata", {}) for o in objects]
    for k, meta in enumerate(metas):
        if type(meta) is not dict:
            problems.setdefault(k, f"`metadata` is {_kind(meta)}, not an object")
            metas[k] = {}
    columns: dict[str, pl.Series] = {}
    for field in FIELDS:
        column: list[Any] = [meta.get(field) for meta in metas]
        wanted = int if field in _INT_FIELDS else str
        for k, value in enumerate(column):
            if value is None or type(value) is wanted:
                if wanted is int and value is not None and not -(2**63) <= value < 2**63:
                    problems.setdefault(k, f"`{field}` is {value}, out of range")
                    column[k] = None
                continue
            expected = {"eventTimestamp": "an integer (epoch ms)"}.get(
                field, "an integer" if wanted is int else "a string"
            )
            problems.setdefault(k, f"`{field}` is {_kind(value)}, expected {expected}")
            column[k] = None
        columns[field] = pl.Series(field, column, dtype=_DTYPES[field], strict=True)
    parameters: list[Any] = [o.get("parameters") for o in objects]
    for k, value in enumerate(parameters):
        if type(value) is not dict:
            if "parameters" not in objects[k]:
                later.setdefault(k, "missing `parameters`")
            else:
                later.setdefault(k, f"`parameters` is {_kind(value)}, not an object")
            parameters[k] = {}
    canonical = canonical_json.dumps_objects(parameters, later)
    assert canonical is not None, "every `parameters` is an object by now"
    columns["parameters"] = canonical
    return columns


_UNKNOWN_LAYOUT = "unknown layout: neither flat (`aggregateType`, ...) nor nested (`metadata`)"
_BAD_CHARACTERISTICS = "expected 0, 1 (initial) or 2 (terminal)"


def _row_checks() -> dict[str, pl.Expr]:
    """Reason -> expression that is True on rows with that problem (the first one wins)."""
    checks: dict[str, pl.Expr] = {
        _UNKNOWN_LAYOUT: pl.all_horizontal(pl.col(f).is_null() for f in FIELDS)
    }
    for field in REQUIRED:
        checks[f"missing `{field}`"] = pl.col(field).is_null()
    for field in _NONEMPTY:
        checks[f"empty `{field}`: Concursus cannot key an event on it"] = pl.col(field) == ""
    checks["`eventTimestamp` is out of range (years 1 to 9999)"] = ~pl.col(
        "eventTimestamp"
    ).is_between(_MIN_MILLIS, _MAX_MILLIS)
    checks[_BAD_CHARACTERISTICS] = ~pl.col("characteristics").fill_null(NEITHER).is_in(
        [NEITHER, INITIAL, TERMINAL]
    )
    return {reason: expr.fill_null(False) for reason, expr in checks.items()}


def _finish(frame: pl.DataFrame, record_times: np.ndarray) -> pl.DataFrame:
    """Raw wire columns -> the canonical frame, plus ``record``."""
    processing_id = frame["processingId"].replace("", None)
    times = pl.Series(record_times, dtype=pl.Int64)
    times = times.gather(frame["record"]) if frame.height else times.clear()
    fallback = pl.from_epoch(times, time_unit="ms").dt.replace_time_zone("UTC")
    processed = processing_time(processing_id).fill_null(fallback.dt.cast_time_unit("us"))
    out = frame.select(
        pl.col("aggregateType").alias("aggregate_type"),
        pl.col("aggregateId").alias("aggregate_id"),
        pl.from_epoch("eventTimestamp", time_unit="ms")
        .dt.replace_time_zone("UTC")
        .dt.cast_time_unit("us")
        .alias("event_timestamp"),
        pl.col("streamId").fill_null(DEFAULTS["streamId"]).alias("stream_id"),
        pl.lit(processing_id).alias("processing_id"),
        pl.lit(processed).alias("processing_timestamp"),
        pl.col("name"),
        pl.col("version").fill_null(DEFAULTS["version"]),
        pl.col("parameters"),
        pl.col("characteristics").fill_null(DEFAULTS["characteristics"]).cast(pl.Int32),
        pl.col("record"),
    )
    return out.cast(dict(SCHEMA))  # type: ignore[arg-type]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number with a fraction",
    }
    return names.get(type(value), f"a {type(value).__name__}")
