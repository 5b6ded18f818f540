"""One append to a local store, in progress: its lock, the files it writes, and its undoing.

``with appending(root, url, events) as work:`` takes the store's lock (appends are serialised
by ``flock`` on ``.lock``), removes what an interrupted append left behind, and loads the
manifest; ``work.write(...)`` writes each new data file (flushed to disk before it is renamed
into place); ``work.commit(manifest, replaced)`` replaces ``store.json`` in one rename, the one
moment the append becomes visible, and then removes the files it replaced.

An append that fails before that moment is undone at once, still under the lock: every file
it began (half-written ones included) is removed, so the store is left exactly as it was.
When the cause is the disk or the folder (no space, a quota, a file size limit, a read-only
file system, no permission), the error becomes :class:`~concursus_lab.exceptions.StoreUnwritable`,
whose message says what failed, that the store is unchanged (checked: ``store.json`` is the one
from before and every file it names has its recorded size) and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.exceptions import ConcursusLabError, StoreUnwritable
from concursus_lab.sources.local.buckets import DELIVERY, stored_schema
from concursus_lab.sources.local.manifest import (
    KINDS,
    MANIFEST,
    Manifest,
    StoredFile,
    data_folder,
    fsync_folder,
)

_FULL = {
    errno.ENOSPC: "the disk holding it is full",
    errno.EDQUOT: "the disk quota there is used up",
}
_READ_ONLY = {
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "this user may not write there",
    errno.EPERM: "this user may not write there",
}


@contextlib.contextmanager
def appending(root: Path, url: str, events: int) -> Iterator[Appending]:
    """An append of ``events`` events to the store at ``root``, under its lock; see the module."""
    work = Appending(root, url, events)
    try:
        lock = os.open(root / ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError as exc:
        error = work.unwritable(exc)
        if error is None:
            raise
        raise error from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _remove_orphans(root)
            work.manifest = Manifest.load(root)
            yield work
        except BaseException as exc:
            work.undo()
            error = work.unwritable(exc)
            if error is None:
                raise
            raise error from exc
    finally:
        os.close(lock)  # which lets go of the lock


class Appending:
    """The state of one append; made by :func:`appending`."""

    def __init__(self, root: Path, url: str, events: int) -> None:
        self.root = root
        self.url = url
        self.events = events
        self.manifest: Manifest | None = None  # as it was when the append began
        self._begun: list[tuple[Path, Path]] = []  # (temporary, final) path of each new file
        self._folders: list[Path] = []  # folders this append made
        self._committed = False

    def write(self, part: pl.DataFrame, kind: str, aggregate_type: str, bucket: int) -> StoredFile:
        """Write one data file of ``part``'s rows (of the store's
        :func:`~concursus_lab.sources.local.buckets.stored_schema`) and describe it."""
        assert self.manifest is not None
        part = part.sort("aggregate_id", "event_timestamp", "stream_id", DELIVERY)
        relative = data_folder(kind, aggregate_type)
        self._make(self.root / relative)
        generation = self.manifest.generation + 1
        name = f"b{bucket:03d}-{generation:06d}-{uuid.uuid4().hex[:8]}.parquet"
        final = self.root / relative / name
        tmp = final.with_name(name + ".tmp")
        self._begun.append((tmp, final))
        # Into memory first: polars reports some failed writes without the system's error
        # ("Invalid thrift: transport error"); written here, a full disk is named as one.
        data = io.BytesIO()
        columns = stored_schema(self.manifest.identity).names()
        part.select(columns).write_parquet(data, statistics=True, row_group_size=256_000)
        with open(tmp, "wb") as out:  # flushed to disk before the manifest can name it
            out.write(data.getbuffer())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, final)
        fsync_folder(final.parent)
        size, sha = data.getbuffer().nbytes, hashlib.sha256(data.getbuffer()).hexdigest()
        stats = part.select(
            pl.col("event_timestamp").min().dt.epoch("us").alias("a"),
            pl.col("event_timestamp").max().dt.epoch("us").alias("b"),
            pl.col("processing_timestamp").min().dt.epoch("us").alias("c"),
            pl.col("processing_timestamp").max().dt.epoch("us").alias("d"),
        ).row(0)
        return StoredFile(
            kind, aggregate_type, bucket, str(relative / name), part.height, *stats, size, sha
        )

    def _make(self, folder: Path) -> None:
        """Make ``folder`` (``<kind>/<type>``) and its parent where missing, noting them."""
        for each in (folder.parent, folder):
            if not each.exists():
                each.mkdir()
                self._folders.append(each)

    def commit(self, manifest: Manifest, replaced: list[StoredFile]) -> None:
        """Make the append visible (replace ``store.json``), then remove the replaced files."""
        manifest.save(self.root)
        self._committed = True
        for f in replaced:  # a file left here is an orphan, which the next append removes
            with contextlib.suppress(OSError):
                (self.root / f.path).unlink()

    def undo(self) -> None:
        """Remove every file and folder this append made, unless its manifest is in place."""
        if self._committed or self._landed():
            return
        for tmp, final in self._begun:
            for path in (tmp, final):
                with contextlib.suppress(OSError):
                    path.unlink()
        for folder in reversed(self._folders):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _landed(self) -> bool:
        """Whether ``store.json`` names a file of this append (it failed after the rename)."""
        ours = {str(final.relative_to(self.root)) for _, final in self._begun}
        try:
            return any(f.path in ours for f in Manifest.load(self.root).files)
        except ConcursusLabError:
            return False

    def unwritable(self, exc: BaseException) -> StoreUnwritable | None:
        """The error to raise for ``exc`` when the disk or the folder caused it, else None."""
        number = _errno(exc)
        if number is None or self._committed:
            return None
        what = f"{os.strerror(number)}{_where(exc)}"
        if number in _READ_ONLY:
            return StoreUnwritable(
                f"cannot append to {self.url!r}: {_READ_ONLY[number]} ({what}). "
                f"{self._proof()} It can still be read. To add events, make it writable "
                f"(remount it read-write, or let this user write to {str(self.root)!r}), or "
                f"copy it where you can write and append there: "
                f"`concursus-lab copy {self.url} NEW_FOLDER --create`."
            )
        said = f"could not append {plural(self.events, 'event')} to {self.url!r}"
        if number in _FULL:
            return StoreUnwritable(
                f"{said}: {_FULL[number]} ({what}). {self._proof()} {self._free()} Make room "
                f"there, or copy the store to one with room (`concursus-lab copy "
                f"{self.url} NEW_FOLDER --create`), and append again."
            )
        if number == errno.EFBIG:
            return StoreUnwritable(
                f"{said}: a file it wrote reached this process's file size limit ({what}). "
                f"{self._proof()} Raise the limit (`ulimit -f unlimited`) and append again."
            )
        return StoreUnwritable(f"{said}: {what}. {self._proof()} Fix the cause and append again.")

    def _proof(self) -> str:
        """What the store holds now, checked: the sentence an error message carries."""
        if self.manifest is None:
            return "Nothing was written: the store is unchanged."
        try:
            now = Manifest.load(self.root)
            whole = all(
                f.bytes is None or (self.root / f.path).stat().st_size == f.bytes for f in now.files
            )
        except (ConcursusLabError, OSError) as exc:
            return f"The store could not be checked afterwards ({exc}); read it to check it."
        if now != self.manifest or not whole:
            return f"{MANIFEST} is not as it was before this append; read the store to check it."
        left = [p for pair in self._begun for p in pair if p.exists()]
        begun = len(self._begun)
        removed = (
            f"the {plural(begun, 'file')} this append had begun {'was' if begun == 1 else 'were'} "
            "removed"
            if not left
            else f"{plural(len(left), 'file')} of this append could not be removed ({left[0]}); "
            "the next append removes them"
        )
        return (
            f"The store is unchanged: {MANIFEST} still names only its "
            f"{plural(len(now.files), 'file')}, each whole (of its recorded size), and {removed}."
        )

    def _free(self) -> str:
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:  # pragma: no cover - the folder was readable a moment ago
            return ""
        return f"{free / 1e6:,.1f} MB free on that disk now."


def _errno(exc: BaseException) -> int | None:
    """The operating system's error number behind ``exc`` (polars names it in its text)."""
    if isinstance(exc, OSError):
        return exc.errno
    if isinstance(exc, pl.exceptions.PolarsError):
        found = re.search(r"\(os error (\d+)\)", str(exc))
        return int(found.group(1)) if found else None
    return None


def _where(exc: BaseException) -> str:
    name = getattr(exc, "filename", None)
    return f": {name}" if name else ""


def _remove_orphans(root: Path) -> None:
    """Files left by an append that was interrupted before it could remove them itself
    (a killed process): every data file the manifest does not name, and manifest drafts."""
    listed = {f.path for f in Manifest.load(root).files}
    for kind in KINDS:
        for path in (root / kind).glob("*/*"):
            if str(path.relative_to(root)) not in listed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    for tmp in root.glob(f".{MANIFEST}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
