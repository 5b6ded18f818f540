"""The one warning a read gives when some of what it read went to the quarantine."""

from __future__ import annotations

import warnings

import polars as pl


def warn_quarantined(quarantine: pl.DataFrame, what: str, url: str, *, stacklevel: int = 3) -> None:
    """Warn that ``quarantine`` holds ``what`` (e.g. ``"row(s)"``) of ``url``, with the commonest
    reason, so that nothing is left out without a word."""
    if quarantine.height == 0:
        return
    reasons = quarantine["reason"].value_counts(sort=True)
    warnings.warn(
        f"{quarantine.height:,} {what} of {url} could not be decoded and are in `.quarantine` "
        f"(most common reason: {reasons['reason'][0]}).",
        stacklevel=stacklevel,
    )
