"""What the Spark questions return: a Spark DataFrame that also comes back as polars.

:class:`SparkFrame` holds the answer as a Spark DataFrame (``.frame``; every DataFrame method
works on the SparkFrame itself: ``.count()``, ``.filter(...)``, ``.write``) and collects it,
when it fits, with :meth:`~SparkFrame.to_polars` (polars' own dtypes, in the order the local
function sorts its rows: the same frame ``cl.latest`` and the others give) or
:meth:`~SparkFrame.to_pandas`. :class:`SparkStateAt` adds what ``cl.state_at`` tells beside
its states: the counts of what was left out and the rows that did not decode.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from concursus_lab.common.time import when


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class SparkFrame:
    """A Spark DataFrame answer (``.frame``) that :meth:`to_polars` collects."""

    frame: Any
    _collect: Callable[[], pl.DataFrame]
    what: str = "rows"
    _collected: list[pl.DataFrame] = dataclasses.field(default_factory=list, init=False)

    def to_polars(self) -> pl.DataFrame:
        """The whole answer in this process, as the local function gives it (collected
        once; polars frames are immutable)."""
        if not self._collected:
            self._collected.append(self._collect())
        return self._collected[0]

    def to_pandas(self) -> Any:
        """:meth:`to_polars` as pandas (times as ``datetime64[us, UTC]``)."""
        return self.to_polars().to_pandas()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.frame, name)

    def __repr__(self) -> str:
        columns = ", ".join(self.frame.columns)
        return f"SparkFrame of {self.what} ({columns}); .to_polars() collects it"


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class SparkStateAt(SparkFrame):
    """:func:`~concursus_lab.spark.state_at`'s answer: states, counts, what did not decode.

    ``counts`` adds up every bucket's, with ``cl.state_at``'s meaning: ``read =
    not_known_yet + after_at + duplicate + undecodable + skipped + applied``.
    """

    aggregate_type: str = ""
    at: dt.datetime | None = None
    known_at: dt.datetime | None = None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    undecodable: SparkFrame | None = None

    def summary(self) -> str:
        """Two deterministic lines, as ``cl.state_at``'s summary."""
        c = self.counts
        bounds = f"at {_when(self.at)}, as known at {_when(self.known_at)}"
        return (
            f"{self.aggregate_type} states {bounds} (on Spark)\n"
            f"{c['read']:,} deliveries: {c['applied']:,} applied, {c['skipped']:,} "
            f"skipped, {c['duplicate']:,} duplicate, {c['after_at']:,} after `at`, "
            f"{c['not_known_yet']:,} not known yet, {c['undecodable']:,} undecodable"
        )

    def __repr__(self) -> str:
        return f"{self.summary()}\n{super().__repr__()}"


def _when(value: dt.datetime | None) -> str:
    return "any time" if value is None else f"{when(value)} UTC"
