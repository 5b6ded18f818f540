"""The replay plan: what a fold sees, in what order, and what became of every delivery.

:func:`prepare` builds the one :class:`Plan` every replay renders: it applies the time
bounds (``frame/cut.py``), keeps one delivery per identity (``frame/identity.py``, warning of
conflicting ones), decodes the parameters (upcast first, ``events/upcast.py``) and puts the
rows in Concursus's causal order with the creation rules (``frame/order.py``,
``frame/creation.py``), all vectorised. The plan gives each delivery its fate
(:data:`OUTCOMES`) once; ``reducing.py`` folds its applied rows (``cl.state_at``,
``cl.state_of``, ``restatements``, Spark's buckets, ``concursus_lab/live``), ``history.py``
shows it as a frame and ``trace/`` steps through it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from concursus_lab.events.decode import SPLIT, Classified, classify, type_codes
from concursus_lab.events.types import EventTypes
from concursus_lab.events.upcast import upcast
from concursus_lab.events.upcasters import STORED
from concursus_lab.frame import conflicts
from concursus_lab.frame.conflicts import Conflicts
from concursus_lab.frame.creation import creation_mask
from concursus_lab.frame.cut import happened_before, known_by
from concursus_lab.frame.identity import tie_columns
from concursus_lab.frame.keys import gather_rows
from concursus_lab.frame.order import by_rank, in_identity_order, restart
from concursus_lab.frame.schema import columns_of

#: What becomes of a delivery read, in the order a delivery is tested for it: the counts
#: of :func:`prepare` (beside ``read`` and ``other_aggregate_types``) and ``cl.history``'s
#: statuses.
OUTCOMES = (
    "not_known_yet",
    "after_at",
    "duplicate",
    "conflicting",
    "undecodable",
    "skipped",
    "applied",
)


#: Counts of upcasting, beside the outcomes: deliveries that counted and were upcast from
#: an older version, and the events their splits added (parts after the first).
UPCAST_COUNTS = ("upcast", "split")


#: Each outcome's code in :attr:`Plan.fate` (its index in :data:`OUTCOMES`).
(NOT_KNOWN_YET, AFTER_AT, DUPLICATE, CONFLICTING, UNDECODABLE, SKIPPED, APPLIED) = range(7)


@dataclasses.dataclass
class Plan:
    """A replay worked out: the rows a fold applies in causal order, and every delivery's fate.

    ``rows`` holds the rows applied, in causal order (row ``rows[i]`` is the ``i``-th
    event the fold builds). When :func:`prepare` is asked with ``shown=True``, ``frame``
    holds the deliveries the time bounds kept (as upcast: a split event as its parts),
    ``fate`` what became of each of its rows (an :data:`OUTCOMES` code), ``replayed`` the
    rows of the events replayed (applied or skipped) in causal order, ``source`` each
    row's row in the frame the plan was asked about (None: the same row) and ``left_out``
    the fate of that frame's rows that are not in ``frame`` (cut by a bound; a split
    event's losing deliveries; -1 elsewhere, None: there are none); :meth:`index` places
    each row among the events the fold builds.
    """

    classified: Classified
    rows: np.ndarray  # applied rows (positions in the classified frame), causal order
    segment_sizes: np.ndarray  # events applied per aggregate, aggregates in replay order
    made: _Made  # aggregate_ids and meta, made when first asked
    counts: dict[str, int]
    undecodable: pl.DataFrame
    conflicts: Conflicts = dataclasses.field(default_factory=Conflicts)
    frame: pl.DataFrame | None = None
    fate: np.ndarray | None = None
    replayed: np.ndarray | None = None
    source: np.ndarray | None = None
    left_out: np.ndarray | None = None

    @property
    def aggregate_ids(self) -> list[str]:
        """The aggregates with at least one applied event, in replay order."""
        return self.made.ids

    @property
    def meta(self) -> list[np.ndarray]:
        """Aligned with ``rows``: aggregate ids, event us, processing us, stream ids."""
        return self.made.meta

    def index(self) -> np.ndarray:
        """Per row of ``frame``: its place among the events the fold applies (-1: none)."""
        index = np.full(len(self.fate), -1, dtype=np.int64)
        index[self.rows] = np.arange(len(self.rows))
        return index

    def events(self) -> list:
        """The events the fold applies, in order: the very instances it builds."""
        return self.classified.build(self.rows, self.meta)


@dataclasses.dataclass(frozen=True)
class Undeclared:
    """An aggregate type whose event types are not declared (``cl.history`` without
    ``types=``): each row's kind is its ``characteristics`` and nothing is decoded."""

    aggregate_type: str
    declares_initial: bool


#: The name the plan had before it gave every delivery its fate (``concursus_lab/live``).
Replay = Plan


def prepare(
    frame: pl.DataFrame,
    types: EventTypes | Undeclared,
    at: dt.datetime | None,
    known_at: dt.datetime | None,
    duplicates: str,
    *,
    strict: bool,
    created: pl.Series | None = None,
    shown: bool = False,
) -> Plan:
    """The :class:`Plan` of a fold of ``frame``'s rows of ``types`` between the bounds: the
    rows in causal order with their per-row meta, every delivery's fate, and counts of
    every row left out and why (``conflicting``: deliveries that lost to one that differs
    from them, warned about; ``duplicate``: the other deliveries that lost).

    ``created`` names aggregates that already have a state before these rows (a replay
    resumed from a kept state: ``concursus_lab/live``); the creation rules treat them so.
    ``shown``: keep the planned rows, their fates and where each came from (``frame``,
    ``fate``, ``replayed``, ``source``, ``left_out``), for ``cl.history``, ``cl.trace``
    and keyed folds; a fold alone needs only the rows applied and the counts, and lets
    the rest go (less memory while it folds)."""
    counts = dict.fromkeys(("read", *OUTCOMES, "other_aggregate_types", *UPCAST_COUNTS), 0)
    mine = pl.col("aggregate_type") == types.aggregate_type
    known, before = known_by(known_at), happened_before(at)
    tally = frame.select(
        mine.sum().alias("read"),
        (mine & ~known).sum().alias("not_known_yet"),
        (mine & known & ~before).sum().alias("after_at"),
    ).row(0, named=True)
    counts.update(tally)
    counts["other_aggregate_types"] = frame.height - tally["read"]
    kept = tally["read"] - tally["not_known_yet"] - tally["after_at"]
    asked = frame.height
    frame = frame.select(*columns_of(frame), *tie_columns(frame))
    source = left_out = None
    if kept < frame.height:  # filter only when something is left out (it copies every column)
        if shown:
            left_out, inside = _cut(frame, mine, known, before)
            frame, source = frame.filter(inside), np.flatnonzero(inside.to_numpy())
        else:
            frame = frame.filter(mine & known & before)
    # what each row decodes as, upcast where an upcaster says (``events/upcast.py``)
    codes = _codes(types, frame)
    settled = None
    if (codes == SPLIT).any():  # deliveries are resolved before an event is split in parts
        frame, codes, settled, parts = _split(frame, types, duplicates)
        duplicates = "keep"
        if shown:
            source, left_out = _parts_of(parts, source, left_out, asked)
    # parameters are upcast and decoded (polars, regular expressions) while rows are sorted
    # and the replay is worked out as if every row of a declared type decodes (polars and
    # NumPy); both release the GIL, so they share two cores. Rows that turn out not to
    # decode are rare: only then is the replay worked out again.
    kinds = _kinds(types, frame, codes)
    with ThreadPoolExecutor(1) as pool:
        decoding = pool.submit(_decode, types, frame, codes)
        keyed = in_identity_order(frame, duplicates)
        order, start = keyed.order, keyed.start
        declared = codes[order] >= 0
        times = (keyed.ts, keyed.pts, keyed.stream_code, keyed.streams)
        guess = _replay_rows(frame, types, order, start, declared, kinds, times, created)
        decoded, classified = decoding.result()
    found, dropped = settled or (keyed.conflicts, frame.height - len(order))
    conflicts.report(found)
    counts["conflicting"] = found.deliveries
    counts["duplicate"] = dropped - counts["conflicting"]
    counts.update(_upcast_counts(decoded, order))
    if len(order) < frame.height:
        classified.keep_only(order)  # a repeat that lost is a duplicate, not undecodable
    if strict:
        classified.raise_if_undecodable(decoded)
    undecodable = classified.undecodable_frame(decoded)
    counts["undecodable"] = undecodable.height
    decodable = classified.code[order] >= 0
    if (decodable == declared).all():
        rows, sizes, made, replayed = guess
    else:
        rows, sizes, made, replayed = _replay_rows(
            frame, types, order, start, decodable, kinds, times, created
        )
    counts["applied"] = len(rows)
    counts["skipped"] = int(decodable.sum()) - len(rows)
    if not shown:  # a fold alone: its rows and counts
        return Plan(classified, rows, sizes, made, counts, undecodable, found)
    fate = _fates(frame.height, order, keyed.conflicting, classified, rows)
    return Plan(
        classified, rows, sizes, made, counts, undecodable, found,
        decoded, fate, replayed, source, left_out,
    )  # fmt: skip


def _cut(frame: pl.DataFrame, mine: pl.Expr, known: pl.Expr, before: pl.Expr):
    """The fate of each row a bound cuts (-1: kept, or of another type), and a mask of the
    rows kept."""
    flags = frame.select((mine & ~known).alias("late"), (mine & known & ~before).alias("after"))
    left_out = np.full(frame.height, -1, dtype=np.int8)
    left_out[flags["late"].to_numpy()] = NOT_KNOWN_YET
    left_out[flags["after"].to_numpy()] = AFTER_AT
    inside = frame.select(mine & known & before).to_series()
    return left_out, inside


def _parts_of(parts, source, left_out, asked: int):
    """``source`` and ``left_out`` once a split made ``parts`` (:func:`_split`'s: the row
    before the split of each part, and the fate of each row it left out)."""
    parent, lost = parts
    before = np.arange(len(lost)) if source is None else source
    if left_out is None:
        left_out = np.full(asked, -1, dtype=np.int8)
    losers = np.flatnonzero(lost >= 0)
    left_out[before[losers]] = lost[losers]
    return before[parent], left_out


def _fates(n, order, conflicting, classified, rows) -> np.ndarray:
    """What became of each row: losers are duplicates (or conflicting), the rest undecodable,
    skipped or applied."""
    fate = np.full(n, DUPLICATE, dtype=np.int8)
    fate[conflicting] = CONFLICTING
    fate[order] = SKIPPED
    if classified.reasons:
        fate[np.fromiter(classified.reasons, dtype=np.int64)] = UNDECODABLE
    fate[rows] = APPLIED
    return fate


def _upcast_counts(decoded: pl.DataFrame, order: np.ndarray) -> dict[str, int]:
    if STORED not in decoded.columns or len(order) == 0:
        return {}
    stored = decoded[STORED]
    part = stored.struct.field("part").fill_null(-1).to_numpy()[order]
    return {"upcast": int((part == 0).sum()), "split": int((part > 0).sum())}


def _codes(types: EventTypes | Undeclared, frame: pl.DataFrame) -> np.ndarray:
    """Each row's type code, through the upcasters (:func:`~concursus_lab.events.decode.
    type_codes`); without declared types, 0: every row counts as decodable."""
    if isinstance(types, Undeclared):
        return np.zeros(frame.height, dtype=np.int64)
    return type_codes(types, frame, through_upcasters=True)


def _kinds(types: EventTypes | Undeclared, frame: pl.DataFrame, codes: np.ndarray):
    """Each row's kind: its declared type's (-1: none), or its ``characteristics``."""
    if isinstance(types, Undeclared):
        return frame["characteristics"].to_numpy().astype(np.int32)
    return np.array([t.characteristics for t in types] + [-1], dtype=np.int32)[codes]


def _decode(types: EventTypes | Undeclared, frame: pl.DataFrame, codes: np.ndarray):
    """The rows upcast (row for row: no upcaster on the way splits), and decoded."""
    if isinstance(types, Undeclared):
        classified = Classified([], frame.height)  # type: ignore[arg-type]
        classified.code[:] = 0
        return frame, classified
    decoded = upcast(types, frame).frame
    return decoded, classify(types, decoded, codes=codes)


def _split(frame: pl.DataFrame, types: EventTypes, duplicates: str):
    """The deliveries that count (resolved as ``duplicates`` asks, conflicts found), each
    upcast (split events as their parts): the rows, their type codes, (the conflicting
    deliveries, how many deliveries were left out), and (each part's row in ``frame``, the
    fate of each row of ``frame``: -1 where it counted)."""
    found, dropped = Conflicts(), 0
    lost = np.full(frame.height, -1, dtype=np.int8)
    counted_rows = np.arange(frame.height)
    if duplicates != "keep":
        keyed = in_identity_order(frame, duplicates)
        found, dropped = keyed.conflicts, frame.height - len(keyed.order)
        counted = np.zeros(frame.height, dtype=bool)
        counted[keyed.order] = True
        lost[~counted] = DUPLICATE
        lost[keyed.conflicting] = CONFLICTING
        counted_rows = np.flatnonzero(counted)
        frame = frame.filter(pl.Series(counted))
    parts = upcast(types, frame)
    parent = np.arange(frame.height) if parts.parent is None else parts.parent
    frame = parts.frame
    return frame, type_codes(types, frame), (found, dropped), (counted_rows[parent], lost)


def _replay_rows(frame, types, order, start, decodable, kinds, times, created=None):
    """The rows the reducer sees, in causal order, from the identity order and which rows
    decode: (rows, events per aggregate, their aggregate ids and per-row meta (made when
    first asked), the rows replayed: applied or skipped, in causal order)."""
    if not decodable.all():
        order, start = order[decodable], restart(start, decodable)
    order, start = by_rank(order, start, kinds)
    segment = np.cumsum(start) - 1
    if created is not None:  # a flag per aggregate: it has a state before these rows
        firsts = gather_rows(frame["aggregate_id"], order[start])
        created = firsts.is_in(created.implode()).to_numpy()
    applied = creation_mask(kinds[order], start, types.declares_initial, created)
    rows = order[applied]
    seg = segment[applied]
    sizes = np.bincount(seg, minlength=int(start.sum()))  # events per aggregate
    with_events = np.flatnonzero(sizes)
    first_rows = order[np.flatnonzero(start)[with_events]]
    dense = np.zeros(len(sizes), dtype=np.int64)
    dense[with_events] = np.arange(len(with_events))
    made = _Made(frame["aggregate_id"], first_rows, dense[seg], rows, times)
    return rows, sizes[with_events], made, order


class _Made:
    """The ids of the aggregates with applied events and the per-row meta of the applied
    rows (ids, event us, processing us, stream ids), made when first asked: a fold builds
    its events with them (a chunk of rows at a time: :meth:`meta_of`), a keyed fold needs
    neither."""

    def __init__(self, ids, first_rows, dense, rows, times) -> None:
        self._ids, self._first_rows, self._dense = ids, first_rows, dense
        self._rows, self._times = rows, times

    @functools.cached_property
    def ids(self) -> list[str]:
        return gather_rows(self._ids, self._first_rows).to_list()

    @functools.cached_property
    def _objects(self) -> tuple[np.ndarray, np.ndarray]:
        """The aggregate ids and the stream ids as object arrays (one entry per distinct)."""
        id_objects = np.empty(len(self.ids), dtype=object)
        id_objects[:] = self.ids
        streams = self._times[3]
        stream_objects = np.empty(len(streams), dtype=object)
        stream_objects[:] = streams
        return id_objects, stream_objects

    def meta_of(self, a: int, b: int) -> list[np.ndarray]:
        """The meta of applied rows ``a`` to ``b`` (exclusive), made now: a fold's chunk."""
        if "meta" in self.__dict__:
            return [m[a:b] for m in self.meta]
        ts, pts, stream_code, _ = self._times
        rows = self._rows[a:b]
        ids, streams = self._objects
        return [ids[self._dense[a:b]], ts[rows], pts[rows], streams[stream_code[rows]]]

    def event_times(self) -> np.ndarray:
        """The applied rows' event times (epoch us), in order."""
        if "meta" in self.__dict__:
            return self.meta[1]
        return self._times[0][self._rows]

    @functools.cached_property
    def meta(self) -> list[np.ndarray]:
        meta = self.meta_of(0, len(self._rows))
        self._times = self._dense = self._ids = None  # every row's keys: no longer needed
        self.__dict__.pop("_objects", None)
        return meta
