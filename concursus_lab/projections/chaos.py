"""Will the view survive real delivery? Redeliver a history in chaos and compare the views.

:func:`chaos` redelivers one history many times (in another order, with repeats) and checks
that a projection gives the same view every time. When it does not, the failing pair of
deliveries is *shrunk* (delta debugging) to a few events that still disagree
(:mod:`concursus_lab.projections.shrink`).

Views are compared as :func:`~concursus_lab.diff` compares them: by the projections' key when
they declare one (a fold's key, ``cl.projection(..., key=...)``, or ``key=`` here), else as
whole rows in any order (``same_view``); floats are equal within a relative 1e-9. Unlike
``cl.diff`` and ``cl.bisect``, which compare two versions of a projection on the columns
both have, a redelivery that changes the view's set of columns is a change.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.identity import by_delivery, identity_of, resolve
from concursus_lab.frame.schema import columns_of, validate
from concursus_lab.frame.timeuuid import time_uuids
from concursus_lab.projections.diff import Diff, diff, same_view
from concursus_lab.projections.projection import (
    AnyProjection,
    as_projection,
    project,
    view_key,
)
from concursus_lab.projections.shrink import shrunk
from concursus_lab.projections.views import key_columns

SHUFFLES = ("within-lateness", "any")


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
            return f"{who}stable: the same view in all {self.runs:,} redeliveries ({setting})"
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
    events = validate(events, check_parameters=False)
    delivered = by_delivery(events).select(columns_of(events))
    distinct = resolve(delivered, "last").with_row_index("__event")
    identity = list(identity_of(delivered))
    delivered = delivered.join(
        distinct.select(*identity, "__event"),
        on=identity,
        how="left",
        maintain_order="left",
    )
    reference = project(delivered.drop("__event"), p)
    lateness = (
        distinct["processing_timestamp"].dt.epoch("us") - distinct["event_timestamp"].dt.epoch("us")
    ).to_numpy()
    setting = {
        "shuffle": shuffle,
        "duplicate_rate": float(duplicate_rate),
        "seed": seed,
        "name": p.name,
    }
    for run in range(1, runs + 1):
        rng = np.random.default_rng([seed, run])
        again = redeliver(distinct, rng, shuffle, float(duplicate_rate), lateness, seed=seed)
        view = project(again.drop("__event"), p)
        if not same_view(reference, view, keys, same_columns=True):
            found = shrunk(p, keys, delivered, again, distinct, max_tests)
            va, vb = found.views
            return Chaos(
                stable=False,
                runs=runs,
                counterexample=found.counterexample,
                redeliveries=found.redeliveries,
                views={"original": va, "redelivery": vb},
                diff=diff(va, vb, key=keys, names=("original", "redelivery")),
                shrunk_from=distinct.height,
                tests=found.tests,
                minimal=found.minimal,
                failed_run=run,
                **setting,
            )
    return Chaos(
        True, runs, delivered.head(0).drop("__event"), None, {}, None, 0, 0, True, **setting
    )


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
    return out.with_columns(
        time_uuids(out["processing_timestamp"], seed=seed).alias("processing_id")
    )


def _one_key(key: Any, p: Any) -> tuple[str, ...] | None:
    return view_key(p) if key is None else key_columns(key)
