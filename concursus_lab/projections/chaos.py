"""Will the view survive real delivery? Bisect two versions, and redeliver a history in chaos.

:func:`bisect` replays a history in arrival order (processing time, then row order) and
finds the first delivery after which two projections disagree, with both views there.

:func:`chaos` redelivers one history many times (in another order, with repeats) and checks
that a projection gives the same view every time. When it does not, the failing pair of
deliveries is *shrunk* (delta debugging) to a few events that still disagree.

Views are compared as :func:`~concursus_lab.diff` compares them: by the projections' key when
they declare one (a fold's key, ``cl.projection(..., key=...)``, or ``key=`` here), else as
whole rows in any order; floats are equal within a relative 1e-9.

>>> import polars as pl
>>> import concursus_lab as cl
>>> events = cl.sample.fixture("messy")
>>> @cl.projection(duplicates="keep", key="name")
... def messages(events: pl.DataFrame) -> pl.DataFrame:  # counts repeats too: a bug
...     return events.group_by("name").len("events")
>>> found = cl.chaos(events, messages, runs=5, duplicate_rate=0.2, seed=1)
>>> found.stable, found.counterexample.height
(False, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.progress import bar
from concursus_lab.common.text import plural
from concursus_lab.common.time import when
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.identity import IDENTITY, resolve
from concursus_lab.frame.schema import COLUMNS, validate
from concursus_lab.frame.timeuuid import time_uuids
from concursus_lab.projections.diff import Diff, diff, same_view
from concursus_lab.projections.projection import AnyProjection, as_projection, project, view_key

SHUFFLES = ("within-lateness", "any")
#: Above this many prefixes to check one by one, bisect shows a progress bar.
_PROGRESS_FROM = 1_000


# ------------------------------------------------------------------------------- bisect


@dataclass(frozen=True)
class Bisection:
    """What :func:`bisect` found; prints a short summary.

    Attributes
    ----------
    names
        What the two projections are called.
    index
        Arrival position (0-based) of the delivery after which the views first disagree;
        None when they never disagree, -1 when they disagree on an empty history.
    deliveries
        How many deliveries were replayed (the whole history).
    event
        That delivery (one row of the event frame; empty when ``index`` is None or -1).
    views
        Both views just after it: ``{name_a: view, name_b: view}`` (at the end of the
        history when they never disagree).
    diff
        :func:`~concursus_lab.diff` of the two views there.
    exact
        True when every earlier prefix was checked and agrees: ``index`` is the first
        disagreement. False when only found by search (see :func:`bisect`).
    evaluations
        How many prefixes were projected (by both projections).
    """

    names: tuple[str, str]
    index: int | None
    deliveries: int
    event: pl.DataFrame
    views: dict[str, pl.DataFrame]
    diff: Diff
    exact: bool
    evaluations: int

    @property
    def agree(self) -> bool:
        """True when the two projections never disagreed."""
        return self.index is None

    def __str__(self) -> str:
        a, b = self.names
        checked = f"{self.evaluations:,} prefixes projected"
        if self.index is None:
            how = "at every prefix" if self.exact else "at every prefix the search tried"
            return (
                f"{a} and {b} agree {how} of {self.deliveries:,} deliveries in arrival order "
                f"({checked})"
            )
        if self.index == -1:
            return f"{a} and {b} disagree on an empty history\n{self.diff}"
        guarantee = (
            f"exact: all {self.index:,} earlier prefixes agree"
            if self.exact
            else "agree just before it; earlier prefixes not all checked"
        )
        row = self.event.row(0, named=True)
        return "\n".join(
            [
                f"{a} and {b} first disagree after delivery {self.index + 1:,} of "
                f"{self.deliveries:,} in arrival order ({guarantee}; {checked})",
                f"  {row['aggregate_type']} {row['aggregate_id']} {row['name']} "
                f"{row['parameters']}, event time {when(row['event_timestamp'])}, "
                f"processed {when(row['processing_timestamp'])}",
                f"  {self.diff}",
            ]
        )

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def bisect(
    events: pl.DataFrame,
    projection_a: AnyProjection,
    projection_b: AnyProjection,
    *,
    key: str | Sequence[str] | None = None,
    names: tuple[str, str] | None = None,
    exact: bool = True,
    progress: bool | None = None,
) -> Bisection:
    """The first delivery, in arrival order, after which two projections disagree.

    Prefixes of the history in arrival order (processing time, then row order) are
    projected by both; each projection applies its own duplicate rule to the prefix.
    Disagreement need not be monotonic (two views may disagree, then agree again), so:

    1. prefixes of 1, 2, 4, 8, ... deliveries are tried until the views disagree (and the
       whole history last);
    2. a binary search between the last agreeing and the first disagreeing try finds a
       delivery after which they disagree while they agreed just before it. Both sides
       of it are checked, so this is always a real transition;
    3. with ``exact=True`` (default), every earlier prefix is then checked in order, so
       the answer is *the first* disagreement; when the search found none, every prefix
       is checked before saying they always agree. With ``exact=False`` steps 1 and 2
       are all (about 2 log2(n) projections): the answer is the first disagreement
       whenever disagreement, once begun, persists; otherwise a real transition that
       may not be the first.

    Parameters
    ----------
    events
        A canonical event frame: every delivery, in any row order.
    projection_a, projection_b
        Two projections (functions, :func:`~concursus_lab.projection` or
        :func:`~concursus_lab.fold`); a view must also be computable from an empty history.
    key
        The columns identifying a view row (default: the projections' own, when they
        declare the same; else whole rows are compared).
    names
        What to call them (default: their names, or ``("a", "b")``).
    exact
        Check every earlier prefix (see above).
    progress
        Show a progress bar while checking prefixes one by one (None: when there are
        more than 1,000 of them).

    Returns
    -------
    Bisection
        ``.index``, ``.event``, ``.views`` (both views there), ``.diff`` and ``.exact``.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> events = cl.sample.fixture("messy")
    >>> every = cl.projection(lambda f: f.group_by("name").len(), duplicates="keep",
    ...                       key="name", name="deliveries")
    >>> once = cl.projection(lambda f: f.group_by("name").len(), key="name", name="events")
    >>> print(cl.bisect(events, every, once))  # doctest: +NORMALIZE_WHITESPACE
    deliveries and events first disagree after delivery 11 of 17 in arrival order
    (exact: all 10 earlier prefixes agree; 14 prefixes projected)
      parcel parcel-C delivered {"destinationId":"dest-00003"},
      event time 2026-03-02 10:45:00, processed 2026-03-02 10:45:21
      deliveries -> events: 1 changed (len 1), 0 added, 0 removed, 3 unchanged
    """
    a, b = as_projection(projection_a, "projection_a"), as_projection(projection_b, "projection_b")
    names = names or _default_names(a.name, b.name)
    a_name, b_name = _pair_names(names)
    keys = _common_key(key, a, b)
    arrival = _arrival(validate(events, check_parameters=False))
    n = arrival.height
    views: dict[int, tuple[pl.DataFrame, pl.DataFrame, bool]] = {}

    def differ(k: int) -> bool:
        if k not in views:
            prefix = arrival.head(k)
            va, vb = project(prefix, a), project(prefix, b)
            views[k] = (va, vb, not same_view(va, vb, keys))
        return views[k][2]

    def result(k: int | None, exact_: bool) -> Bisection:
        at = n if k is None else k
        differ(at)
        va, vb, _ = views[at]
        index = None if k is None else k - 1
        event = arrival.head(0) if k is None or k == 0 else arrival.slice(k - 1, 1)
        return Bisection(
            (a_name, b_name), index, n, event.select(COLUMNS), {a_name: va, b_name: vb},
            diff(va, vb, key=keys, names=(a_name, b_name)), exact_, len(views),
        )

    if differ(0):
        return result(0, True)
    lo, hi, step = 0, None, 1
    while hi is None:
        k = min(step, n)
        if differ(k):
            hi = k
        elif k == n:
            break
        else:
            lo, step = k, step * 2
    if hi is not None:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if differ(mid):
                hi = mid
            else:
                lo = mid
    if not exact:
        return result(hi, False)
    end = hi if hi is not None else n
    todo = [k for k in range(1, end) if k not in views]
    # a bar for many prefixes (by count, not time: a notebook's output stays the same)
    shown = progress if progress is not None else len(todo) > _PROGRESS_FROM
    for k in bar(shown, iterable=todo, what="checking prefixes", unit="prefixes"):
        if differ(k):
            return result(k, True)
    return result(hi, True)


# -------------------------------------------------------------------------------- chaos


@dataclass(frozen=True)
class Chaos:
    """What :func:`chaos` found; prints a short summary.

    Attributes
    ----------
    stable
        True when every redelivery gave the same view as the history as delivered.
    runs
        Redeliveries asked for.
    failed_run
        When unstable, the first redelivery whose view differed (the search stops there).
    counterexample
        When unstable: the events (one row per event, canonical columns) of the shrunk
        history; empty when stable.
    redeliveries
        When unstable: two deliveries of those events (frames in arrival order, with their
        repeats and processing times) whose views differ: the original delivery (what
        ``events`` holds, restricted to them) and the redelivery.
    views
        The two views of ``redeliveries``, ``{"original": ..., "redelivery": ...}``.
    diff
        :func:`~concursus_lab.diff` of the two views (None when stable).
    shrunk_from
        How many events the failing history had before shrinking.
    tests
        How many candidate histories shrinking projected (twice each).
    minimal
        True when shrinking finished: removing any one aggregate, event or repeated
        delivery from ``redeliveries`` makes their views agree. False when it stopped at
        ``max_tests``.
    shuffle, duplicate_rate, seed, name
        The question asked.
    """

    stable: bool
    runs: int
    counterexample: pl.DataFrame
    redeliveries: tuple[pl.DataFrame, pl.DataFrame] | None
    views: dict[str, pl.DataFrame]
    diff: Diff | None
    shrunk_from: int
    tests: int
    minimal: bool
    shuffle: str
    duplicate_rate: float
    seed: int
    name: str = ""
    failed_run: int | None = field(default=None)

    def __str__(self) -> str:
        how = (
            "shuffled within the observed lateness"
            if self.shuffle == "within-lateness"
            else "shuffled freely"
        )
        setting = f"{how}, {self.duplicate_rate:.1%} repeated, seed {self.seed}"
        who = f"{self.name}: " if self.name else ""
        if self.stable:
            return (
                f"{who}stable: the same view in all {self.runs:,} redeliveries ({setting})"
            )
        assert self.redeliveries is not None and self.diff is not None
        first, second = self.redeliveries
        aggregates = self.counterexample.select(
            pl.struct("aggregate_type", "aggregate_id").n_unique()
        ).item()
        shrink = "minimal" if self.minimal else "not fully shrunk: max_tests reached"
        return "\n".join(
            [
                f"{who}unstable: redelivery {self.failed_run} of {self.runs:,} gave another "
                f"view ({setting})",
                f"counterexample: {plural(self.counterexample.height, 'event')} of "
                f"{plural(aggregates, 'aggregate')} ({shrink}; shrunk from "
                f"{self.shrunk_from:,} events in {self.tests:,} tests), delivered as "
                f"{plural(first.height, 'delivery', 'deliveries')} and as "
                f"{plural(second.height, 'delivery', 'deliveries')}",
                str(self.diff),
            ]
        )

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def chaos(
    events: pl.DataFrame,
    projection: AnyProjection,
    *,
    runs: int = 20,
    shuffle: str = "within-lateness",
    duplicate_rate: float = 0.01,
    seed: int = 0,
    key: str | Sequence[str] | None = None,
    max_tests: int = 2_000,
) -> Chaos:
    """Redeliver a history many times and check that the projection's view never changes.

    The reference is the view of ``events`` as delivered (in arrival order). Each run
    delivers the same events again (one per identity, the last processed version):

    ``shuffle="within-lateness"``
        each event gets a new processing time: its event time plus a lateness drawn from
        the lateness observed in ``events`` (processing minus event time), so events
        overtake each other only as far as real lateness lets them;
    ``shuffle="any"``
        the events arrive in a uniformly random order (processing times are the history's
        own, handed out in the new order).

    and each event is delivered a second time, a little later, with probability
    ``duplicate_rate``. Runs are deterministic for a ``seed``.

    At the first run whose view differs, that pair of deliveries (as delivered, and the
    redelivery) is shrunk by delta debugging, keeping the rows of a smaller set of events
    in both as long as their views still differ: first whole aggregates are removed, then
    single events, then single repeated deliveries. The result is 1-minimal for that
    pair (removing any one more aggregate, event or repeat makes the views agree).

    Parameters
    ----------
    events
        A canonical event frame (every delivery).
    projection
        A function, :func:`~concursus_lab.projection` or :func:`~concursus_lab.fold`.
    runs
        How many redeliveries to try.
    shuffle
        ``"within-lateness"`` (default) or ``"any"``, as above.
    duplicate_rate
        Share of events delivered twice in each run (0 to 1).
    seed
        The same seed gives the same runs and the same counterexample.
    key
        The columns identifying a view row (default: the projection's own, else whole rows
        are compared).
    max_tests
        Most candidate histories to try while shrinking.

    Returns
    -------
    Chaos
        ``.stable``; when False, ``.counterexample``, ``.redeliveries``, ``.views`` and
        ``.diff``.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> events = cl.sample.fixture("messy")
    >>> def last_news(events: pl.DataFrame) -> pl.DataFrame:  # the last message to arrive
    ...     return events.group_by("aggregate_id").agg(pl.col("name").last())
    >>> found = cl.chaos(events, last_news, runs=10, shuffle="any", seed=2, key="aggregate_id")
    >>> print(found)  # doctest: +NORMALIZE_WHITESPACE
    last_news: unstable: redelivery 1 of 10 gave another view (shuffled freely, 1.0%
    repeated, seed 2)
    counterexample: 2 events of 1 aggregate (minimal; shrunk from 15 events in 11 tests),
    delivered as 2 deliveries and as 2 deliveries
    original -> redelivery: 1 changed (name 1), 0 added, 0 removed, 0 unchanged
    >>> [view["name"].item() for view in found.views.values()]
    ['delivered', 'receivedAtDepot']
    >>> def news(events: pl.DataFrame) -> pl.DataFrame:  # the last to happen: stable
    ...     return events.sort("event_timestamp").group_by("aggregate_id").agg(
    ...         pl.col("name").last())
    >>> print(cl.chaos(events, news, runs=10, shuffle="any", seed=2))
    news: stable: the same view in all 10 redeliveries (shuffled freely, 1.0% repeated, seed 2)
    """
    p = as_projection(projection)
    keys = _one_key(key, p)
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise SchemaError(f"`runs` must be a positive int, got {runs!r}.")
    if shuffle not in SHUFFLES:
        raise SchemaError(
            f"`shuffle` must be one of {SHUFFLES}, got {shuffle!r}: 'within-lateness' moves "
            "events only as far as the lateness seen in `events`, 'any' shuffles freely."
        )
    if not isinstance(duplicate_rate, (int, float)) or not 0 <= duplicate_rate <= 1:
        raise SchemaError(
            f"`duplicate_rate` must be a share between 0 and 1, got {duplicate_rate!r}."
        )
    if not isinstance(seed, int):
        raise SchemaError(f"`seed` must be an int, got {seed!r}.")
    if not isinstance(max_tests, int) or max_tests < 0:
        raise SchemaError(f"`max_tests` must be an int >= 0, got {max_tests!r}.")
    delivered = _arrival(validate(events, check_parameters=False).select(COLUMNS))
    distinct = resolve(delivered, "last").with_row_index("__event")
    delivered = delivered.join(
        distinct.select(*IDENTITY, "__event"), on=list(IDENTITY), how="left",
        maintain_order="left",
    )
    reference = project(delivered.drop("__event"), p)
    lateness = (
        distinct["processing_timestamp"].dt.epoch("us")
        - distinct["event_timestamp"].dt.epoch("us")
    ).to_numpy()
    setting = {"shuffle": shuffle, "duplicate_rate": float(duplicate_rate), "seed": seed,
               "name": p.name}
    for run in range(1, runs + 1):
        rng = np.random.default_rng([seed, run])
        again = redeliver(distinct, rng, shuffle, float(duplicate_rate), lateness, seed=seed)
        view = project(again.drop("__event"), p)
        if not same_view(reference, view, keys):
            return _shrunk(p, keys, delivered, again, distinct, run, runs, max_tests, setting)
    return Chaos(True, runs, delivered.head(0).drop("__event"), None, {}, None, 0, 0, True,
                 **setting)


def redeliver(
    distinct: pl.DataFrame,
    rng: np.random.Generator,
    shuffle: str,
    duplicate_rate: float,
    lateness: np.ndarray,
    *,
    seed: int = 0,
) -> pl.DataFrame:
    """One redelivery of ``distinct`` (one row per event): a new arrival order and repeats.

    Rows come out in arrival order with new processing times (whole milliseconds, as
    time-based UUIDs hold them) and processing ids to match.
    """
    n = distinct.height
    if n == 0:
        return distinct
    event_us = distinct["event_timestamp"].dt.epoch("us").to_numpy()
    repeated = np.flatnonzero(rng.random(n) < duplicate_rate)
    rows = np.concatenate([np.arange(n), repeated])
    if shuffle == "within-lateness":
        first = event_us + rng.choice(lateness, n)
        later = first[repeated] + np.abs(rng.choice(lateness, len(repeated))) + 1_000
        times = np.concatenate([first, later])
        order = np.argsort(times, kind="stable")
        processed = times[order]
    else:
        draw = rng.random(n)
        later = draw[repeated] + rng.random(len(repeated)) * (1 - draw[repeated])
        order = np.argsort(np.concatenate([draw, later]), kind="stable")
        own = distinct["processing_timestamp"].dt.epoch("us").to_numpy()
        processed = np.sort(own[rows])
    processed = (processed // 1000) * 1000
    times = pl.Series("processing_timestamp", processed, dtype=pl.Int64).cast(
        pl.Datetime("us", "UTC")
    )
    out = distinct[rows[order]].with_columns(times)
    return out.with_columns(time_uuids(out["processing_timestamp"], seed=seed).alias(
        "processing_id"
    ))


# ------------------------------------------------------------------------------ shrinking


def _shrunk(
    p: Any,
    keys: tuple[str, ...] | None,
    delivered: pl.DataFrame,
    again: pl.DataFrame,
    distinct: pl.DataFrame,
    run: int,
    runs: int,
    max_tests: int,
    setting: dict[str, Any],
) -> Chaos:
    first_events = delivered["__event"].to_numpy()
    second_events = again["__event"].to_numpy()
    first_repeat = _repeats(first_events)
    second_repeat = _repeats(second_events)
    aggregate_of = (
        distinct.select(pl.struct("aggregate_type", "aggregate_id").rank("dense"))
        .to_series().to_numpy()
    )
    budget = {"tests": 0}

    def views(events: np.ndarray, dropped: frozenset[int]) -> tuple[pl.DataFrame, ...]:
        keep = np.zeros(distinct.height, dtype=bool)
        keep[events] = True
        one = keep[first_events] & ~np.isin(np.arange(len(first_events)), _side(dropped, 0))
        two = keep[second_events] & ~np.isin(np.arange(len(second_events)), _side(dropped, 1))
        a = delivered.filter(pl.Series(one)).drop("__event")
        b = again.filter(pl.Series(two)).drop("__event")
        return a, b, project(a, p), project(b, p)

    def fails(events: np.ndarray, dropped: frozenset[int] = frozenset()) -> bool:
        budget["tests"] += 1
        _, _, va, vb = views(events, dropped)
        return not same_view(va, vb, keys)

    def out_of_budget() -> bool:
        return budget["tests"] >= max_tests

    events = np.arange(distinct.height)
    complete = True
    # 1. whole aggregates
    aggregates = np.unique(aggregate_of)
    kept, done = _ddmin(
        list(aggregates),
        lambda chosen: fails(events[np.isin(aggregate_of, chosen)]),
        out_of_budget,
    )
    complete &= done
    events = events[np.isin(aggregate_of, kept)]
    # 2. single events
    kept, done = _ddmin(list(events), lambda chosen: fails(np.array(chosen)), out_of_budget)
    complete &= done
    events = np.array(sorted(kept), dtype=np.int64)
    # 3. single repeated deliveries (of the events kept), on either side
    keep = np.zeros(distinct.height, dtype=bool)
    keep[events] = True
    repeats = [2 * int(i) for i in np.flatnonzero(first_repeat & keep[first_events])]
    repeats += [2 * int(i) + 1 for i in np.flatnonzero(second_repeat & keep[second_events])]
    dropped: frozenset[int] = frozenset()
    if repeats:
        kept_repeats, done = _ddmin(
            repeats,
            lambda chosen: fails(events, frozenset(repeats) - set(chosen)),
            out_of_budget,
            allow_empty=True,
        )
        complete &= done
        dropped = frozenset(repeats) - set(kept_repeats)
    a, b, va, vb = views(events, dropped)
    counterexample = (
        distinct.filter(pl.col("__event").is_in(events.tolist()))
        .drop("__event")
        .sort("aggregate_type", "aggregate_id", "event_timestamp", "stream_id")
    )
    return Chaos(
        stable=False,
        runs=runs,
        counterexample=counterexample,
        redeliveries=(a, b),
        views={"original": va, "redelivery": vb},
        diff=diff(va, vb, key=keys, names=("original", "redelivery")),
        shrunk_from=distinct.height,
        tests=budget["tests"],
        minimal=complete,
        failed_run=run,
        **setting,
    )


def _ddmin(
    units: list[Any],
    fails: Callable[[list[Any]], bool],
    out_of_budget: Callable[[], bool],
    *,
    allow_empty: bool = False,
) -> tuple[list[Any], bool]:
    """Zeller's delta debugging: a 1-minimal sublist of ``units`` on which ``fails`` holds.

    ``fails(units)`` is assumed true. Returns the sublist and whether it finished (False
    when ``out_of_budget`` stopped it first).
    """
    if allow_empty and units and fails([]):
        return [], True
    n = 2
    while len(units) >= 2:
        chunks = [units[i * len(units) // n : (i + 1) * len(units) // n] for i in range(n)]
        reduced = False
        for chunk in chunks:  # a chunk alone
            if out_of_budget():
                return units, False
            if fails(chunk):
                units, n, reduced = chunk, 2, True
                break
        if not reduced and n > 2:
            for i in range(n):  # all but one chunk
                if out_of_budget():
                    return units, False
                rest = [u for j, c in enumerate(chunks) if j != i for u in c]
                if fails(rest):
                    units, n, reduced = rest, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(units):
                break
            n = min(len(units), 2 * n)
    return units, True


def _repeats(events: np.ndarray) -> np.ndarray:
    """Which deliveries repeat an event delivered earlier in the same sequence."""
    seen: set[int] = set()
    out = np.zeros(len(events), dtype=bool)
    for i, e in enumerate(events.tolist()):
        out[i] = e in seen
        seen.add(e)
    return out


def _side(dropped: frozenset[int], side: int) -> np.ndarray:
    return np.array([d // 2 for d in dropped if d % 2 == side], dtype=np.int64)


# ------------------------------------------------------------------------------ helpers


def _arrival(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.height > 1 and not frame["processing_timestamp"].is_sorted():
        return frame.sort("processing_timestamp", maintain_order=True)
    return frame


def _one_key(key: Any, p: Any) -> tuple[str, ...] | None:
    if key is None:
        return view_key(p)
    return (key,) if isinstance(key, str) else tuple(key)


def _common_key(key: Any, a: Any, b: Any) -> tuple[str, ...] | None:
    if key is not None:
        return (key,) if isinstance(key, str) else tuple(key)
    ka, kb = view_key(a), view_key(b)
    return ka if ka == kb else None


def _default_names(a: str, b: str) -> tuple[str, str]:
    usable = a and b and a != b and "<" not in a + b  # lambdas are all called <lambda>
    return (a, b) if usable else ("a", "b")


def _pair_names(names: Any) -> tuple[str, str]:
    if (
        not isinstance(names, tuple | list)
        or len(names) != 2
        or not all(isinstance(n, str) and n for n in names)
        or names[0] == names[1]
    ):
        raise SchemaError(
            f"`names` must be two different names, such as ('v1', 'v2'); got {names!r}."
        )
    return names[0], names[1]
