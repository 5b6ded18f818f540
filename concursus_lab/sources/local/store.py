"""The embedded store: a folder of Parquet files that needs no server.

Layout of a store folder::

    store.json                      the manifest: which files make up the store now
    events/<type>/b03-000007.parquet    one row per identity: the delivery that wins
    superseded/<type>/b03-000007.parquet  every other delivery of an identity

Every delivery is kept (lateness and duplicate profiles need them), but the identity work
is done when appending, not when reading: ``events/`` holds exactly the rows a Cassandra
table would hold, so reading the store costs no more than reading those Parquet files.
Rows are spread over buckets by ``abs(Java hashCode(aggregate_id)) % buckets`` so that a
read for a few aggregates opens only their buckets' files. An append adds files; it rewrites
a stored file only when a new delivery beats a winner that file holds
(:mod:`~concursus_lab.sources.local.buckets`).

An append writes new files, then replaces ``store.json`` atomically, so a reader sees the
store before or after the append, never half of it. Appends are serialised by a lock file,
and one that fails (a full disk, a read-only folder) removes what it wrote and says so
(:mod:`~concursus_lab.sources.local.appending`). What the manifest may say, how each file is
verified before it is read and how both reach the disk is the business of
:mod:`~concursus_lab.sources.local.manifest`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.exceptions import SchemaError, SourceError, StoreDamaged
from concursus_lab.frame import conflicts
from concursus_lab.frame.identity import Duplicates, decide, identity_of, resolve_lazy
from concursus_lab.frame.jhash import bucket as hash_bucket
from concursus_lab.frame.schema import OPTIONAL, for_writing
from concursus_lab.sources.base import Source
from concursus_lab.sources.local.appending import appending
from concursus_lab.sources.local.buckets import DELIVERY, empty_stored, settle, stored_schema
from concursus_lab.sources.local.manifest import (
    MANIFEST,
    Manifest,
    StoredFile,
    Vanished,
    digest,
    verify,
)
from concursus_lab.sources.query import Query

DEFAULT_BUCKETS = 8
_RETRIES = 5
T = TypeVar("T")


class LocalStore(Source):
    """A folder of Parquet files holding event histories; see the module docstring.

    Open it with ``cl.open("data/sample")``; ``cl.open(path, create=True)`` makes a new one.

    >>> import concursus_lab as cl, tempfile
    >>> store = cl.open(tempfile.mkdtemp() + "/demo", create=True)
    >>> store.append(cl.sample.parcels(10, seed=1))
    32
    >>> store.events().height
    32
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = False, buckets: int = 8):
        self.root = Path(path).expanduser()
        self.url = str(path)
        if create and not (self.root / MANIFEST).exists():
            if self.root.exists() and any(self.root.iterdir()):
                raise SourceError(
                    f"{self.url!r} exists and is not empty, so no new store was made there. "
                    "Choose an empty or new folder."
                )
            if not isinstance(buckets, int) or buckets < 1:
                raise SourceError(f"`buckets` must be a positive int, got {buckets!r}.")
            self.root.mkdir(parents=True, exist_ok=True)
            Manifest.new(buckets).save(self.root)
        elif not self.root.exists():
            raise SourceError(
                f"no store at {self.url!r} (the folder does not exist). Create one with "
                f"`cl.open({self.url!r}, create=True)`, or write the sample there with "
                f"`concursus-lab sample {self.url}`."
            )
        Manifest.load(self.root)  # fail now, not at first read, if it is not a store

    # -- reading -----------------------------------------------------------------------

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        return self._retrying(lambda: self._lazy(query, eager=True).collect())

    def scan(
        self,
        aggregate_type: str | None = None,
        aggregate_ids: Iterable[str] | str | None = None,
        event_time: tuple[TimeLike | None, TimeLike | None] | None = None,
        known_at: TimeLike | None = None,
        *,
        duplicates: Duplicates = "last",
    ) -> pl.LazyFrame:
        """The lazy equivalent of :meth:`events`, for histories larger than memory.

        Filters given here and any you add to the LazyFrame are pushed into the Parquet scan.
        Repeats are resolved lazily here, so conflicting ones (see :meth:`events`) are not
        looked for: read with ``duplicates="keep"`` and ``cl.describe`` to count them.
        """
        query = Query.of(aggregate_type, aggregate_ids, event_time, known_at, duplicates)
        return self._retrying(lambda: self._lazy(query))

    def scan_part(self, part: int, parts: int) -> pl.LazyFrame:
        """Every delivery of the aggregates in the store's buckets ``s`` with ``s % parts ==
        part``, lazily, opening only those buckets' files: whole aggregates (a bucket holds
        every row of its aggregates), as a fold a part at a time reads them
        (:mod:`~concursus_lab.timetravel.buckets`), with no pass over the other parts."""
        query = Query.of(duplicates="keep")
        return self._retrying(lambda: self._lazy(query, part=(part, parts)))

    def _retrying(self, read: Callable[[], T]) -> T:
        """``read()``, again when a concurrent append replaced a file it was about to open.

        A file that stays missing while the manifest still lists it is damage, not a race.
        """
        for _ in range(_RETRIES):
            try:
                return read()
            except Vanished as gone:
                missing = gone.path
            except FileNotFoundError as exc:  # removed between verifying and reading
                missing = os.path.relpath(exc.filename or "?", self.root)
            except pl.exceptions.PolarsError as exc:
                raise self._unreadable(exc) from exc
        listed = {f.path for f in self._manifest().files}
        if missing not in listed:  # pragma: no cover - five appends in a row overtook us
            raise StoreDamaged(f"{self.url!r} kept changing during {_RETRIES} reads; read again.")
        raise StoreDamaged(
            f"store file {str(self.root / missing)!r} is listed in {MANIFEST} but missing. "
            "Restore it from a backup; until then read other aggregate types or ids (a read "
            "opens only the files it needs)."
        )

    def _unreadable(self, exc: Exception) -> StoreDamaged:
        """The error for a file whose bytes Parquet cannot read (only version 1 files,
        which have no recorded hash, get this far when damaged)."""
        manifest = self._manifest()
        for f in manifest.files:
            try:
                pl.read_parquet(self.root / f.path, schema=stored_schema(manifest.identity))
            except (pl.exceptions.PolarsError, OSError) as bad:
                return StoreDamaged(
                    f"store file {str(self.root / f.path)!r} is damaged ({bad}). Restore it "
                    "from a backup."
                )
        return StoreDamaged(f"{self.url!r} could not be read ({exc}).")

    def _manifest(self) -> Manifest:
        return Manifest.load(self.root)

    def _lazy(
        self, query: Query, *, eager: bool = False, part: tuple[int, int] | None = None
    ) -> pl.LazyFrame:
        """The events ``query`` asks for, lazily; ``eager``: the contested identities (see
        below) are decided now, so that conflicting deliveries are warned about; ``part``:
        only the buckets of that part (:meth:`scan_part`)."""
        manifest = self._manifest()
        schema = stored_schema(manifest.identity)
        columns = [c for c in schema if c != DELIVERY]
        winners = self._scan(manifest, "events", query, part)
        if query.duplicates == "last" and query.known_at is None:
            return winners.select(columns)  # decided (and warned about) by the appends
        losers = self._scan(manifest, "superseded", query, part)
        if query.duplicates == "keep":
            return pl.concat([f for f in (winners, losers) if f is not None]).select(columns)
        # The winner of an identity may have been processed after `known_at`, or a
        # first-wins rule may prefer an earlier delivery: re-decide only the contested ones.
        if losers is None:
            return winners.select(columns)
        ids = list(identity_of(schema))
        contested = losers.select(ids).unique()
        settled = winners.join(contested, on=ids, how="anti", nulls_equal=True)
        rivals = pl.concat([winners.join(contested, on=ids, how="semi", nulls_equal=True), losers])
        if not eager:
            decided = resolve_lazy(rivals, query.duplicates, ties=[DELIVERY])
            return pl.concat([settled, decided]).select(columns)
        kept, rows = pl.collect_all([settled, rivals])  # one pass over the shared scans
        decision = decide(rows, query.duplicates, ties=[DELIVERY])
        conflicts.report(decision.conflicts)
        decided = rows if decision.mask is None else rows.filter(pl.Series(decision.mask))
        return pl.concat([kept, decided]).lazy().select(columns)

    def _scan(
        self, manifest: Manifest, kind: str, query: Query, part: tuple[int, int] | None = None
    ) -> pl.LazyFrame | None:
        files = list(self._files(manifest, kind, query))
        if part is not None:
            files = [f for f in files if f.bucket % part[1] == part[0]]
        schema = stored_schema(manifest.identity)
        if not files:
            return None if kind == "superseded" else empty_stored(schema).lazy()
        verify(self.root, files)
        frame = pl.scan_parquet([str(self.root / f.path) for f in files], schema=schema)
        predicate = query.predicate()
        return frame if predicate is None else frame.filter(predicate)

    def _files(self, manifest: Manifest, kind: str, query: Query) -> Iterator[StoredFile]:
        buckets = None
        if query.aggregate_ids is not None:
            ids = pl.Series(query.aggregate_ids, dtype=pl.String)
            buckets = set(hash_bucket(ids, manifest.buckets).to_list())
        start = _micros(query.event_start)
        end = _micros(query.event_end)
        known = _micros(query.known_at)
        for f in manifest.files:
            if f.kind != kind:
                continue
            if query.aggregate_type is not None and f.aggregate_type != query.aggregate_type:
                continue
            if buckets is not None and f.bucket not in buckets:
                continue
            if start is not None and f.event_max < start:
                continue
            if end is not None and f.event_min >= end:
                continue
            if known is not None and f.processed_min > known:
                continue
            yield f

    # -- writing -----------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        """Validate ``frame`` and add its events atomically; returns how many were added.

        Every delivery is kept. A delivery of an identity already in the store wins if it
        was processed later (ties go to the later append), as a Cassandra upsert would;
        one that loses to a delivery that differs from it is warned about (conflicting
        deliveries). The optional identity columns (``sequence``, ``event_id``) are kept:
        the first append to an empty store decides whether its events carry them, and every
        later append must carry the same ones. Other extra columns are not stored. Nothing
        is written when validation fails; an append that fails part-way (a full disk, a
        read-only folder) is undone and raises
        :class:`~concursus_lab.exceptions.StoreUnwritable`, the store as it was.
        """
        frame = for_writing(frame, keeps_identity=True)
        if frame.height == 0:
            return 0
        with (
            conflicts.one_warning(disjoint=True),
            appending(self.root, self.url, frame.height) as work,
        ):
            assert work.manifest is not None
            manifest = work.manifest = dataclasses.replace(
                work.manifest, identity=self._identity(work.manifest, frame)
            )
            frame = frame.with_columns(
                pl.int_range(pl.len(), dtype=pl.Int64).add(manifest.next_delivery).alias(DELIVERY),
                hash_bucket(frame["aggregate_id"], manifest.buckets).alias("__bucket"),
            )
            files = self._with_proof(manifest.files)
            written: list[StoredFile] = []
            replaced: list[StoredFile] = []
            groups = frame.partition_by(["aggregate_type", "__bucket"], as_dict=True)
            for (aggregate_type, bucket), group in sorted(groups.items()):
                stored = [
                    f for f in files if f.aggregate_type == aggregate_type and f.bucket == bucket
                ]
                plan = settle(self.root, group.drop("__bucket"), stored)
                replaced.extend(plan.replaced)
                for kind, part in plan.parts():
                    written.append(work.write(part, kind, aggregate_type, bucket))
            gone = {f.path for f in replaced}
            keep = [f for f in files if f.path not in gone] + written
            keep.sort(key=lambda f: (f.kind, f.aggregate_type, f.bucket, f.path))
            updated = Manifest(
                buckets=manifest.buckets,
                next_delivery=manifest.next_delivery + frame.height,
                generation=manifest.generation + 1,
                files=tuple(keep),
                identity=manifest.identity,
            )
            work.commit(updated, replaced)
        return frame.height

    def _identity(self, manifest: Manifest, frame: pl.DataFrame) -> tuple[str, ...]:
        """The optional identity columns the store keeps: ``frame``'s, which must be the
        ones its events already carry (an empty store takes the frame's)."""
        carried = tuple(c for c in OPTIONAL if c in frame.columns)
        if manifest.files and carried != manifest.identity:
            said = list(manifest.identity) or "none (Concursus's identity)"
            raise SchemaError(
                f"the events of {self.url!r} carry the identity column(s) {said}, and this "
                f"frame {list(carried) or 'none'}: one store identifies its events one way. "
                "Append events mapped the same way, or copy these into a new store: "
                "cl.open(NEW_FOLDER, create=True).append(frame)."
            )
        return carried

    def _with_proof(self, files: tuple[StoredFile, ...]) -> list[StoredFile]:
        """The files, with the size and SHA-256 of those a version 1 manifest listed without."""
        proved = []
        for f in files:
            if f.sha256 is None:
                try:
                    size, sha = digest(self.root / f.path)
                except FileNotFoundError:
                    raise StoreDamaged(
                        f"store file {str(self.root / f.path)!r} is listed in {MANIFEST} but "
                        "missing; restore it from a backup before appending."
                    ) from None
                f = dataclasses.replace(f, bytes=size, sha256=sha)
            proved.append(f)
        return proved

    # -- describing --------------------------------------------------------------------

    def summary(self) -> dict:
        """Counts from the manifest alone (no data is read)."""
        manifest = Manifest.load(self.root)
        events = [f for f in manifest.files if f.kind == "events"]
        superseded = [f for f in manifest.files if f.kind == "superseded"]
        return {
            "events": sum(f.rows for f in events),
            "deliveries": sum(f.rows for f in manifest.files),
            "superseded": sum(f.rows for f in superseded),
            "aggregate_types": sorted({f.aggregate_type for f in events}),
            "files": len(manifest.files),
        }

    def __repr__(self) -> str:
        try:
            s = self.summary()
        except SourceError as exc:
            return f"LocalStore({self.url!r}: {exc})"
        types = ", ".join(s["aggregate_types"]) or "no aggregate types"
        return (
            f"LocalStore({_display_path(self.root, self.url)!r}: {s['events']:,} events ({types}), "
            f"{s['superseded']:,} repeated deliveries, {s['files']} files)"
        )


def _display_path(root: Path, given: str) -> str:
    """The path as given, or relative to the working folder when that is short and stable.

    Notebooks print stores; a path relative to the notebook prints the same on every machine.
    """
    if not Path(given).is_absolute():
        return given
    try:
        relative = os.path.relpath(root.resolve(), Path.cwd())
    except ValueError:
        return given
    return relative if relative.count("..") <= 1 else given


def _micros(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
