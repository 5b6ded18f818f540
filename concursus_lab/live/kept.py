"""Every delivery a live fold has read, kept in a few pieces: the newest ones small.

A late delivery re-folds its aggregate from deliveries read long ago, so a live fold keeps
them all (``states.py``); finding one aggregate's among them should cost what was read
since that aggregate's first delivery, not everything. :class:`Kept` holds the deliveries
in pieces whose sizes halve towards the newest (each batch is a piece; two neighbours are
merged whenever the older is no larger than the newer, as a binary counter carries), so
there are about log2(batches) pieces, each delivery is copied about that many times in all,
and :meth:`Kept.since` reads only the pieces that hold rows from a given row on.
"""

from __future__ import annotations

import polars as pl


class Kept:
    """Deliveries in the order read, in pieces (see the module's text)."""

    def __init__(self) -> None:
        self._pieces: list[pl.DataFrame] = []
        self._starts: list[int] = []  # the row each piece starts at
        self.height = 0
        self._whole: pl.DataFrame | None = None

    def append(self, frame: pl.DataFrame) -> None:
        """Add ``frame`` (the newest deliveries) after the others."""
        self._pieces.append(frame)
        self._starts.append(self.height)
        self.height += frame.height
        pieces = self._pieces
        while len(pieces) > 1 and pieces[-2].height <= pieces[-1].height:
            newer = pieces.pop()
            self._starts.pop()
            pieces[-1] = pl.concat([pieces[-1], newer], how="diagonal_relaxed", rechunk=True)
        self._whole = None

    def since(self, row: int) -> pl.DataFrame:
        """The deliveries from row ``row`` on (and some before it: whole pieces)."""
        first = 0
        while first + 1 < len(self._starts) and self._starts[first + 1] <= row:
            first += 1
        return _joined(self._pieces[first:])

    @property
    def frame(self) -> pl.DataFrame:
        """Every delivery, in the order read."""
        if self._whole is None:
            self._whole = _joined(self._pieces)
        return self._whole


def _joined(pieces: list[pl.DataFrame]) -> pl.DataFrame:
    return pieces[0] if len(pieces) == 1 else pl.concat(pieces, how="diagonal_relaxed")
