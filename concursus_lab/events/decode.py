"""Decoding event rows into declared event types, column-wise.

:func:`classify` sorts the rows of one aggregate type into its declared event types and
decodes their ``parameters`` texts into per-type value arrays: with polars' JSON decoder
where a type's parameters allow it, else one exact JSON parse per row. Rows that cannot be
decoded get a reason, never a silent drop. ``EventTypes.decode``, ``state_at`` and the
projections' folds all decode through here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.text import shown
from concursus_lab.events.decoded import MAX_SHOWN
from concursus_lab.events.event_type import EventType, Lookups
from concursus_lab.events.fast import fast_columns, fast_pattern
from concursus_lab.events.parameters import NO_DEFAULT, coerce
from concursus_lab.events.upcasters import STORED, STORED_DTYPE, ends
from concursus_lab.exceptions import DecodeError
from concursus_lab.frame import canonical_json

#: Rows whose events' constructor arguments :meth:`Classified.stream` makes at once.
STREAM_CHUNK = 1 << 16


class Classified:
    """Rows of one aggregate type sorted into event types, with their decoded parameters.

    ``code[i]`` is the index of row i's event type in ``types`` (-1 when the row cannot be
    decoded, with ``reasons[i]`` saying why). Parameter values of each type are held as
    arrays aligned with ``rows[t]``, the positions of that type's decodable rows.
    """

    def __init__(self, types: Lookups, height: int) -> None:
        self.types = list(types)
        self.code = np.full(height, -1, dtype=np.int32)
        self.reasons: dict[int, str] = {}
        self.rows: list[np.ndarray] = []
        self.values: list[list[np.ndarray | pl.Series]] = []
        self.position = np.full(height, -1, dtype=np.int64)  # index within its type's values

    @property
    def kinds(self) -> np.ndarray:
        """characteristics of each row's declared type (-1 for undecodable rows)."""
        lookup = np.array([t.characteristics for t in self.types] + [-1], dtype=np.int32)
        return lookup[self.code]

    def keep_only(self, rows: np.ndarray) -> None:
        """Forget rows other than ``rows``: they get code -1 and no reason."""
        considered = np.zeros(len(self.code), dtype=bool)
        considered[rows] = True
        self.code = np.where(considered, self.code, -1).astype(np.int32)
        self.reasons = {r: why for r, why in self.reasons.items() if considered[r]}

    def undecodable_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        rows = sorted(self.reasons)
        return frame[rows].with_columns(
            pl.Series("reason", [self.reasons[r] for r in rows], dtype=pl.String)
        )

    def raise_if_undecodable(self, frame: pl.DataFrame) -> None:
        if not self.reasons:
            return
        rows = sorted(self.reasons)
        shown = "\n".join(
            f"  - {frame['aggregate_id'][r]} {frame['name'][r]!r} at "
            f"{frame['event_timestamp'][r]}: {self.reasons[r]}"
            for r in rows[:MAX_SHOWN]
        )
        more = f"\n  ... and {len(rows) - MAX_SHOWN:,} more" if len(rows) > MAX_SHOWN else ""
        raise DecodeError(
            f"{len(rows):,} event(s) of {frame['aggregate_type'][rows[0]]!r} could not be "
            f"decoded:\n{shown}{more}\nDeclare the missing types or fix the parameters, or "
            "pass strict=False to get them counted and returned instead."
        )

    def build(self, rows: np.ndarray, meta: Sequence[np.ndarray]) -> list[Any]:
        """Instances for ``rows`` (decodable row positions), in that order.

        ``meta`` holds, aligned with ``rows``: aggregate ids, event and processing times in
        epoch microseconds, and stream ids.
        """
        return list(self.stream(rows, meta))

    def stream(
        self,
        rows: np.ndarray,
        meta: Sequence[np.ndarray] | Callable[[int, int], Sequence[np.ndarray]],
    ) -> Iterator[Any]:
        """The instances of :meth:`build`, each made only when it is asked for (``meta``: the
        arrays of :meth:`build`, or ``meta(a, b)`` giving those of rows ``a`` to ``b``).

        One ``map`` per event type makes that type's instances in order; the stream takes
        the next instance from the map of each row's type (``map(next, ...)``), so no Python
        code runs per event but the constructor. A fold that drops each event after using
        it keeps a handful of instances in memory instead of millions, which also keeps
        them in the processor's cache: at a million events it runs about 40% faster. The
        constructors' arguments are Python lists made a chunk of :data:`STREAM_CHUNK` rows
        at a time (at 5M events, made at once they held about 1 GB of Python objects).
        """
        meta_of = meta if callable(meta) else (lambda a, b: [m[a:b] for m in meta])
        if len(rows) <= STREAM_CHUNK:
            return self._stream(rows, meta_of(0, len(rows)))
        return chain.from_iterable(
            self._stream(rows[a : a + STREAM_CHUNK], meta_of(a, a + STREAM_CHUNK))
            for a in range(0, len(rows), STREAM_CHUNK)
        )

    def _stream(self, rows: np.ndarray, meta: Sequence[np.ndarray]) -> Iterator[Any]:
        """:meth:`stream` of a chunk of rows, its arguments made at once."""
        if len(rows) == 0:
            return iter(())
        codes = self.code[rows]
        makers = np.empty(len(self.types), dtype=object)
        for t, event_type in enumerate(self.types):
            where = np.flatnonzero(codes == t) if len(self.types) > 1 else None
            if where is not None and len(where) == 0:
                makers[t] = iter(())
                continue
            mine = rows if where is None else rows[where]
            position = self.position[mine]
            params = [_listed(column, position) for column in self.values[t]]
            columns = [(m if where is None else m[where]).tolist() for m in meta]
            makers[t] = map(event_type.cls._concursus_make, *params, *columns)
        if len(self.types) == 1:
            return makers[0]
        return map(next, makers[codes].tolist())

    def build_frame(self, frame: pl.DataFrame, rows: np.ndarray) -> list[Any]:
        """Instances for ``rows`` of ``frame`` (the frame that was classified)."""
        picked = frame.select(
            "aggregate_id",
            pl.col("event_timestamp").dt.epoch("us"),
            pl.col("processing_timestamp").dt.epoch("us"),
            "stream_id",
        ).gather(pl.Series(rows, dtype=pl.Int64))
        meta = [_objects(picked[c]) for c in picked.columns]
        return self.build(rows, meta)


def _objects(column: pl.Series) -> np.ndarray:
    if column.dtype == pl.Int64 and not column.null_count():
        return column.to_numpy()
    out = np.empty(column.len(), dtype=object)
    out[:] = column.to_list()
    return out


def classify(
    types: Lookups,
    frame: pl.DataFrame,
    rows: np.ndarray | None = None,
    *,
    codes: np.ndarray | None = None,
) -> Classified:
    """Sort rows of ``frame`` (all of ``types.aggregate_type``) into types and decode them.

    ``rows`` limits the work to those row positions (others get code -1 and no reason);
    ``codes`` are the rows' :func:`type_codes`, if already known.
    """
    result = Classified(types, frame.height)
    code = type_codes(types, frame) if codes is None else codes.copy()
    if rows is not None:
        considered = np.zeros(frame.height, dtype=bool)
        considered[rows] = True
        code = np.where(considered, code, -2)
    unknown = np.flatnonzero(code == -1)
    if len(unknown):
        pairs = frame.select("name", "version")[unknown]
        reason_of = {(n, v): types.unknown_reason(n, v) for n, v in pairs.unique().rows()}
        for row, (n, v) in zip(unknown.tolist(), pairs.rows(), strict=True):
            result.reasons[row] = reason_of[(n, v)]
    parameters = frame["parameters"]
    for t, event_type in enumerate(result.types):
        mine = np.flatnonzero(code == t)
        good, values, bad = _decode_type(event_type, parameters.gather(pl.Series(mine)))
        for position, reason in bad:
            result.reasons[int(mine[position])] = reason
            code[mine[position]] = -1
        result.rows.append(mine[good])
        result.position[mine[good]] = np.arange(len(good))
        result.values.append(values)
    result.code = np.maximum(code, -1).astype(np.int32)
    if result.reasons and frame.schema.get(STORED) == STORED_DTYPE:
        _say_upcast(frame, result.reasons)
    return result


def _say_upcast(frame: pl.DataFrame, reasons: dict[int, str]) -> None:
    """Add to the reasons of upcast rows what they were stored as."""
    rows = sorted(reasons)
    stored = frame[STORED].gather(pl.Series(rows, dtype=pl.Int64)).to_list()
    for row, was in zip(rows, stored, strict=True):
        if was is not None:
            reasons[row] += f" (after upcasting from {was['name']!r} v{was['version']})"


#: The :func:`type_codes` of a row whose upcasters split it (``through_upcasters=True``).
SPLIT = -3


def type_codes(
    types: Lookups, frame: pl.DataFrame, *, through_upcasters: bool = False
) -> np.ndarray:
    """Each row's index in ``list(types)`` by (name, version), -1 when not declared.

    ``through_upcasters``: a row an upcaster starts from gets the index of the type its
    chain ends at, or :data:`SPLIT` when a step on the way splits it (what the rows will
    decode as once upcast, before they are: the replay plan works it out meanwhile).
    """
    listed = list(types)
    keys = [(n, v, listed.index(t)) for (n, v), t in types.by_key.items()]
    if through_upcasters:
        for key in types.chain:
            end = ends(types.chain, key)
            keys.append((*key, SPLIT if end is None else listed.index(types.by_key[end[0]])))
    if not keys or frame.height == 0:
        return np.full(frame.height, -1, dtype=np.int64)
    if len(keys) <= 64:
        expr = pl.lit(-1, pl.Int64)
        for name, version, index in keys:
            match = (pl.col("name") == name) & (pl.col("version") == version)
            expr = pl.when(match).then(pl.lit(index, pl.Int64)).otherwise(expr)
        return frame.select(expr).to_series().to_numpy().astype(np.int64)
    lookup = pl.DataFrame(
        {
            "name": [k[0] for k in keys],
            "version": [k[1] for k in keys],
            "__code": [k[2] for k in keys],
        },
        schema={"name": pl.String, "version": pl.String, "__code": pl.Int64},
    )
    coded = frame.select("name", "version").join(
        lookup, on=["name", "version"], how="left", maintain_order="left"
    )
    return coded["__code"].fill_null(-1).to_numpy().astype(np.int64)


def _decode_type(
    event_type: EventType, texts: pl.Series
) -> tuple[np.ndarray, list[np.ndarray], list[tuple[int, str]]]:
    """Decode one type's parameter texts: (good positions, value arrays, (position, reason))."""
    n = texts.len()
    params = event_type.parameters
    fast = np.zeros(n, dtype=bool)
    columns: list[pl.Series] = []
    pattern = fast_pattern(params)
    required = [p.name for p in params if not p.optional]
    if pattern is not None and n and required:
        # one pass: a row matched where a required parameter's group is not null
        columns, invalid, matched = fast_columns(params, pattern, texts, required[0])
        fast = matched & ~invalid  # (invalid: dates that look like dates but are not real)
        if not fast.all():
            keep = pl.Series(fast)
            columns = [c.filter(keep) for c in columns]
    elif pattern is not None and n:
        fast = texts.str.contains(pattern).fill_null(False).to_numpy()
        if fast.any() and params:
            columns, invalid, _ = fast_columns(params, pattern, texts.filter(pl.Series(fast)))
            if invalid.any():  # dates that look like dates but are not real ones
                fast[np.flatnonzero(fast)[invalid]] = False
                keep = pl.Series(~invalid)
                columns = [c.filter(keep) for c in columns]
    slow = np.flatnonzero(~fast)
    slow_values: list[list[Any]] = [[] for _ in params]
    bad: list[tuple[int, str]] = []
    good_slow = []
    if len(slow):
        texts_list = texts.gather(pl.Series(slow)).to_list()
        for position, text in zip(slow.tolist(), texts_list, strict=True):
            ok, decoded = _decode_one(event_type, text)
            if ok:
                good_slow.append(position)
                for i, value in enumerate(decoded):
                    slow_values[i].append(value)
            else:
                bad.append((position, decoded))
    good = np.flatnonzero(fast)
    if not good_slow:
        return good, [_to_array(c, lazy=True) for c in columns] if params else [], bad
    merged_rows = np.concatenate([good, np.array(good_slow, dtype=np.int64)])
    order = np.argsort(merged_rows, kind="stable")
    arrays = []
    for i in range(len(params)):
        fast_part = _to_array(columns[i]) if columns else np.zeros(0, dtype=object)
        slow_part = np.empty(len(good_slow), dtype=object)
        slow_part[:] = slow_values[i]
        both = np.concatenate([fast_part.astype(object), slow_part])
        arrays.append(both[order])
    return merged_rows[order], arrays, bad


def _listed(values: np.ndarray | pl.Series, position: np.ndarray) -> list[Any]:
    """``values`` at ``position``, as a list of Python values."""
    if isinstance(values, pl.Series):
        return values.gather(position).to_list()
    return values[position].tolist()


def _to_array(column: pl.Series, *, lazy: bool = False) -> np.ndarray | pl.Series:
    """A decoded parameter's values, indexable by position: a NumPy array, or (``lazy``,
    texts that are mostly distinct) the polars column itself, whose Python strings
    :meth:`Classified.stream` makes a chunk at a time (made here at once, 5M events' ids or
    addresses held a Python string each, ~60 bytes, for the whole fold)."""
    if column.null_count() == 0 and column.dtype in (pl.Int64, pl.Float64, pl.Boolean, pl.Date):
        return column.to_numpy()
    if column.dtype == pl.String and column.n_unique() * 4 < column.len():
        # few distinct values (depots, trucks, statuses): one str object each, shared by
        # every event that holds it, instead of one per event; fewer objects to make, and
        # the fold touches memory that stays in the processor's cache
        values = column.unique().sort(nulls_last=True)
        distinct = np.empty(values.len(), dtype=object)
        distinct[:] = values.to_list()
        return distinct[values.search_sorted(column).to_numpy()]
    if lazy and column.dtype == pl.String:
        return column
    out = np.empty(column.len(), dtype=object)
    out[:] = column.to_list()
    return out


def _decode_one(event_type: EventType, text: str | None) -> tuple[bool, Any]:
    """(True, parameter values in declared order) or (False, reason)."""
    try:
        value = canonical_json.loads(text) if text is not None else None
    except canonical_json.NotCanonical:
        return False, f"parameters are not valid JSON: {shown(text)}"
    if type(value) is not dict:
        return False, f"parameters are not a JSON object: {shown(text)}"
    declared = {p.name for p in event_type.parameters}
    extra = sorted(set(value) - declared)
    if extra:
        near = {e: difflib.get_close_matches(e, sorted(declared), 1) for e in extra}
        hints = ", ".join(
            f"{e!r}" + (f" (did you mean {near[e][0]!r}?)" if near[e] else "") for e in extra
        )
        return False, f"unexpected parameter {hints} for {event_type.name!r}"
    out = []
    for p in event_type.parameters:
        if p.name not in value:
            if p.default is not NO_DEFAULT:
                out.append(p.default())
                continue
            if p.optional:
                out.append(None)
                continue
            return False, f"missing parameter {p.name!r} ({p.describe()}) for {event_type.name!r}"
        ok, coerced = coerce(p, value[p.name])
        if not ok:
            return False, f"parameter {coerced}"
        out.append(coerced)
    return True, out
