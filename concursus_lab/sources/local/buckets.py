"""Where an append's deliveries go in one bucket of a local store, and which files that replaces.

A bucket (one aggregate type, one ``abs(hashCode(aggregate_id)) % buckets``) holds ``events``
files, one row per identity (the winner), and ``superseded`` files (every other delivery).
Files are never changed in place, so an append adds files, and rewrites a stored file only
when that file must lose rows: an ``events`` file holding a winner that a new delivery beats.

:func:`settle` decides it for one bucket:

1. the appended deliveries are resolved among themselves (a frame may repeat an identity);
   the beaten ones are superseded, and no stored file is needed for that;
2. the stored winners of the identities left are found (reading only the columns that
   decide between two deliveries);
3. where a new delivery beats a stored winner, the ``events`` files holding such winners are
   rewritten without them, and those winners join the superseded; where a stored winner
   beats the new delivery, the new one is simply superseded. ``superseded`` files are never
   rewritten.

Which delivery wins is :func:`~concursus_lab.frame.identity.winners`' rule (last processed,
then the later delivery), so the store agrees with every other reader; deliveries that lose
to one that differs from them are warned about there (conflicting deliveries). Identities
are the frame's (:func:`~concursus_lab.frame.identity.identity_of`): a store whose events
carry a ``sequence`` or an ``event_id`` (:func:`stored_schema`) is identified by it. A
bucket that has gathered :data:`MAX_FILES_PER_BUCKET` files is merged into one file of each
kind instead, so reads open few files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from concursus_lab.frame.conflicts import PAYLOAD
from concursus_lab.frame.identity import identity_of, winners
from concursus_lab.frame.schema import OPTIONAL, SCHEMA
from concursus_lab.sources.local.manifest import StoredFile, verify

#: The store's delivery sequence: breaks ties between deliveries processed at the same time,
#: unique per delivery within a store.
DELIVERY = "_delivery"
#: The columns of a stored row (of a store without the optional identity columns).
STORED = pl.Schema({**SCHEMA, DELIVERY: pl.Int64})
#: A bucket with this many files is merged into one file of each kind on its next append.
MAX_FILES_PER_BUCKET = 16
_FILE = "__file"


def stored_schema(identity: tuple[str, ...] = ()) -> pl.Schema:
    """The columns of a stored row, with the optional ``identity`` columns the store keeps."""
    return pl.Schema({**SCHEMA, **{c: OPTIONAL[c] for c in identity}, DELIVERY: pl.Int64})


def _contest(schema: pl.Schema) -> list[str]:
    """What decides which of two deliveries wins (the identity, then the delivery order),
    and what they say (to tell a conflicting one)."""
    return [*identity_of(schema), "processing_timestamp", DELIVERY, *PAYLOAD]


@dataclass(frozen=True)
class Plan:
    """What one append writes to one bucket, and which stored files the new ones replace."""

    events: pl.DataFrame
    superseded: pl.DataFrame
    replaced: tuple[StoredFile, ...] = ()

    def parts(self) -> list[tuple[str, pl.DataFrame]]:
        """The files to write: (kind, rows), only those with rows."""
        return [
            (k, p)
            for k, p in (("events", self.events), ("superseded", self.superseded))
            if p.height
        ]


def settle(root: Path, group: pl.DataFrame, stored: list[StoredFile]) -> Plan:
    """The plan for appending ``group`` (rows of :func:`stored_schema`, later deliveries than
    any stored) to the bucket whose files are ``stored``."""
    schema = group.schema
    if len(stored) >= MAX_FILES_PER_BUCKET:
        return _merged(root, group, stored)
    fresh, beaten = _split(group, winners(group, "last", ties=[DELIVERY]))
    held = [f for f in stored if f.kind == "events"]
    rivals = _rivals(root, held, fresh)
    if rivals.height == 0:
        return Plan(fresh, beaten)
    contest = pl.concat([rivals.drop(_FILE), fresh.select(_contest(schema))])
    mask = winners(contest, "last", ties=[DELIVERY])
    if mask is None:  # pragma: no cover - every rival shares its identity with a fresh row
        return Plan(fresh, beaten)
    fresh, lost = _split(fresh, mask[rivals.height :])
    displaced = rivals.filter(~pl.Series(mask[: rivals.height]))
    if displaced.height == 0:
        return Plan(fresh, pl.concat([beaten, lost]))
    paths = set(displaced[_FILE].to_list())
    touched = [f for f in held if str(root / f.path) in paths]
    verify(root, touched)  # never carry damaged rows into a rewritten file
    rows = read(root, touched, schema)
    out = pl.col(DELIVERY).is_in(displaced[DELIVERY].implode())
    return Plan(
        pl.concat([rows.filter(~out), fresh]),
        pl.concat([beaten, lost, rows.filter(out)]),
        tuple(touched),
    )


def _merged(root: Path, group: pl.DataFrame, stored: list[StoredFile]) -> Plan:
    verify(root, stored)  # never carry damaged rows into a rewritten file
    everything = pl.concat([read(root, stored, group.schema), group])
    won, beaten = _split(everything, winners(everything, "last", ties=[DELIVERY]))
    return Plan(won, beaten, tuple(stored))


def _split(frame: pl.DataFrame, mask: np.ndarray | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows ``mask`` keeps, the others); no mask keeps every row."""
    if mask is None:
        return frame, frame.clear()
    keep = pl.Series(mask)
    return frame.filter(keep), frame.filter(~keep)


def _rivals(root: Path, held: list[StoredFile], fresh: pl.DataFrame) -> pl.DataFrame:
    """The stored winners (in ``held``, the bucket's events files) of identities in ``fresh``:
    the columns of a contest (:func:`_contest`) and the file each is in."""
    contest = _contest(fresh.schema)
    if not held or fresh.height == 0:
        return fresh.clear().select(contest).with_columns(pl.lit(None, pl.String).alias(_FILE))
    verify(root, held)
    ids = list(identity_of(fresh))
    paths = [str(root / f.path) for f in held]
    return (
        pl.scan_parquet(paths, schema=fresh.schema, include_file_paths=_FILE)
        .select(*contest, _FILE)
        .join(fresh.lazy().select(ids), on=ids, how="semi")
        .collect()
    )


def read(root: Path, files: list[StoredFile], schema: pl.Schema = STORED) -> pl.DataFrame:
    """The rows of ``files`` (of ``schema``: :func:`stored_schema`), read whole."""
    if not files:
        return empty_stored(schema)
    return pl.read_parquet([str(root / f.path) for f in files], schema=schema)


def empty_stored(schema: pl.Schema = STORED) -> pl.DataFrame:
    """No stored rows."""
    return pl.DataFrame(schema=schema)
