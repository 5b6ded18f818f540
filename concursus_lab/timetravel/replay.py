"""The replay plan: which rows a fold sees, in what order, and what was left out.

:func:`prepare` applies the time bounds, keeps one delivery per identity (warning of
conflicting ones), decodes the parameters and puts the rows in Concursus's causal order
(see ``frame/order.py``), all vectorised; ``reducing.py`` then folds the rows it returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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


@dataclasses.dataclass
class Replay:
    """The rows to replay, in causal order, and what the filters dropped."""

    classified: Classified
    rows: np.ndarray  # applied rows (positions in the classified frame), causal order
    segment_sizes: np.ndarray  # events applied per aggregate, aggregates in replay order
    aggregate_ids: list[str]  # aggregates with at least one applied event
    meta: list[np.ndarray]  # aligned with rows: ids, event us, processing us, stream ids
    counts: dict[str, int]
    undecodable: pl.DataFrame
    conflicts: Conflicts = dataclasses.field(default_factory=Conflicts)


def prepare(
    frame: pl.DataFrame,
    types: EventTypes,
    at: dt.datetime | None,
    known_at: dt.datetime | None,
    duplicates: str,
    *,
    strict: bool,
    created: pl.Series | None = None,
) -> Replay:
    """What a fold of ``frame``'s rows of ``types`` sees, between the bounds: the rows in
    causal order with their per-row meta, and counts of every row left out and why
    (``conflicting``: deliveries that lost to one that differs from them, warned about;
    ``duplicate``: the other deliveries that lost).

    ``created`` names aggregates that already have a state before these rows (a replay
    resumed from a kept state: ``concursus_lab/live``); the creation rules treat them so."""
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
    frame = frame.select(*columns_of(frame), *tie_columns(frame))
    if kept < frame.height:  # filter only when something is left out (it copies every column)
        frame = frame.filter(mine & known & before)
    # what each row decodes as, upcast where an upcaster says (``events/upcast.py``)
    codes = type_codes(types, frame, through_upcasters=True)
    settled = None
    if (codes == SPLIT).any():  # deliveries are resolved before an event is split in parts
        frame, codes, settled = _split(frame, types, duplicates)
        duplicates = "keep"
    # parameters are upcast and decoded (polars, regular expressions) while rows are sorted
    # and the replay is worked out as if every row of a declared type decodes (polars and
    # NumPy); both release the GIL, so they share two cores. Rows that turn out not to
    # decode are rare: only then is the replay worked out again.
    kinds = np.array([t.characteristics for t in types] + [-1], dtype=np.int32)[codes]
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
        rows, sizes, ids, meta, applied = guess
    else:
        rows, sizes, ids, meta, applied = _replay_rows(
            frame, types, order, start, decodable, kinds, times, created
        )
    counts["applied"] = applied
    counts["skipped"] = int(decodable.sum()) - applied
    return Replay(classified, rows, sizes, ids, meta, counts, undecodable, found)


def _upcast_counts(decoded: pl.DataFrame, order: np.ndarray) -> dict[str, int]:
    if STORED not in decoded.columns or len(order) == 0:
        return {}
    stored = decoded[STORED]
    part = stored.struct.field("part").fill_null(-1).to_numpy()[order]
    return {"upcast": int((part == 0).sum()), "split": int((part > 0).sum())}


def _decode(types: EventTypes, frame: pl.DataFrame, codes: np.ndarray):
    """The rows upcast (row for row: no upcaster on the way splits), and decoded."""
    decoded = upcast(types, frame).frame
    return decoded, classify(types, decoded, codes=codes)


def _split(frame: pl.DataFrame, types: EventTypes, duplicates: str):
    """The deliveries that count (resolved as ``duplicates`` asks, conflicts found), each
    upcast (split events as their parts): the rows, their type codes, and (the conflicting
    deliveries, how many deliveries were left out)."""
    found, dropped = Conflicts(), 0
    if duplicates != "keep":
        keyed = in_identity_order(frame, duplicates)
        found, dropped = keyed.conflicts, frame.height - len(keyed.order)
        counted = np.zeros(frame.height, dtype=bool)
        counted[keyed.order] = True
        frame = frame.filter(pl.Series(counted))
    frame = upcast(types, frame).frame
    return frame, type_codes(types, frame), (found, dropped)


def _replay_rows(frame, types, order, start, decodable, kinds, times, created=None):
    """The rows the reducer sees, in causal order, from the identity order and which rows
    decode: (rows, events per aggregate, aggregate ids, per-row meta, events applied)."""
    ts, pts, stream_code, streams = times
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
    sizes = np.bincount(seg, minlength=int(start.sum()))
    with_events = np.flatnonzero(sizes)
    first_rows = order[np.flatnonzero(start)[with_events]]
    ids = gather_rows(frame["aggregate_id"], first_rows).to_list()
    id_objects = np.empty(len(ids), dtype=object)
    id_objects[:] = ids
    dense = np.zeros(len(sizes), dtype=np.int64)
    dense[with_events] = np.arange(len(with_events))
    stream_objects = np.empty(len(streams), dtype=object)
    stream_objects[:] = streams
    meta = [id_objects[dense[seg]], ts[rows], pts[rows], stream_objects[stream_code[rows]]]
    return rows, sizes[with_events], ids, meta, len(rows)
