"""An in-memory source: a frame that answers ``.events()`` as every other source does.

Nothing is written anywhere: the fixtures open as one (``cl.open("fixture:messy")``), and
tests and tutorials use it where a store on disk would only add files to clean up.

>>> import concursus_lab as cl
>>> source = cl.open("fixture:messy")
>>> source
MemorySource('fixture:messy': 15 events (parcel), 2 repeated deliveries)
>>> source.events(aggregate_ids="parcel-C", duplicates="keep").height
4
"""

from __future__ import annotations

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import COLUMNS, empty, for_writing
from concursus_lab.mapping import Mapping
from concursus_lab.mapping.frames import apply
from concursus_lab.mapping.quarantine import QUARANTINE
from concursus_lab.sources.base import Source
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query


class MemorySource(Source):
    """Every delivery of a frame, kept in memory; ``append`` adds to it (nothing on disk).

    Parameters
    ----------
    frame
        A canonical event frame (validated; extra columns are dropped), or, with ``mapping``,
        a frame of your own events. None: empty.
    url
        How the source prints, e.g. ``"fixture:messy"``.
    mapping
        How ``frame``'s columns map onto events (:class:`~concursus_lab.Mapping`); rows that
        do not map are kept in :attr:`quarantine`, with their reasons.
    """

    takes_mapping = True

    def __init__(
        self,
        frame: pl.DataFrame | None = None,
        *,
        url: str = "memory:",
        mapping: Mapping | None = None,
    ) -> None:
        self.url = url
        self._quarantine = pl.DataFrame(schema=QUARANTINE)
        if mapping is not None and frame is not None:
            mapped = apply(frame, mapping)
            self._frame, self._quarantine = mapped.events, mapped.quarantine
            warn_quarantined(self._quarantine, "row(s)", url)
        else:
            self._frame = empty() if frame is None else for_writing(frame, keeps_identity=True)

    @property
    def quarantine(self) -> pl.DataFrame:
        """The rows of the frame given that did not map (only with a mapping)."""
        return self._quarantine

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        return query.apply(self._frame)

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        """Validate ``frame`` and add every delivery; returns how many were added."""
        frame = for_writing(frame, keeps_identity=True)
        if frame.columns != self._frame.columns:
            extra = [c for c in self._frame.columns if c not in COLUMNS]
            raise SchemaError(
                f"this source's events carry {extra} beside the canonical columns (they identify "
                "each event); append events mapped the same way, cl.from_polars(df, mapping)."
            )
        self._frame = pl.concat([self._frame, frame])
        return frame.height

    def __repr__(self) -> str:
        events = self.events().height
        repeats = self._frame.height - events
        types = ", ".join(sorted(self._frame["aggregate_type"].unique())) or "no aggregate types"
        return (
            f"MemorySource({self.url!r}: {events:,} events ({types}), "
            f"{repeats:,} repeated deliveries)"
        )
