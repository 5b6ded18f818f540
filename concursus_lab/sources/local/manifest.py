"""The local store's manifest, ``store.json``: which files make up the store, and proof of each.

The manifest is the store's only source of truth, so it is trusted no further than it can be
checked. :meth:`Manifest.load` refuses a manifest of the wrong shape and any file path that is
not a data file inside the store (``events/<type>/<name>.parquet`` or the same under
``superseded/``), naming the manifest, the entry and the value. Every file written since
format version 2 is listed with its size and SHA-256; :func:`verify` checks both before a read,
so flipped bytes, a truncated file or a missing one fail with :class:`StoreDamaged` naming the
file, never as wrong values. Version 1 manifests, written before the hashes, still read: their
files are checked for presence only, and the next append records their sizes and hashes.
A store whose events carry the optional identity columns (``sequence``, ``event_id``) lists
them under ``identity``, in format version 3 (so an older concursus-lab, which would drop
them, refuses it); every file of such a store holds them.

Durability: a data file is flushed to disk (``fsync``) before it is renamed into place, the
folder holding it is flushed after the rename, and only then is the manifest written the same
way, so after a crash the manifest never names a file the disk does not hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import urllib.parse
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from concursus_lab.exceptions import SourceError, StoreDamaged
from concursus_lab.frame.schema import OPTIONAL

MANIFEST = "store.json"
FORMAT = "concursus-lab/local-store"
FORMAT_VERSION = 2
#: The version of a store that keeps the optional identity columns.
IDENTITY_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
#: The optional identity columns a store may keep, in their order.
IDENTITY_COLUMNS = tuple(OPTIONAL)
KINDS = ("events", "superseded")
_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "aggregate_type": (str,),
    "bucket": (int,),
    "path": (str,),
    "rows": (int,),
    "event_min": (int,),
    "event_max": (int,),
    "processed_min": (int,),
    "processed_max": (int,),
}
_PROOF: dict[str, tuple[type, ...]] = {"bytes": (int,), "sha256": (str,)}


@dataclass(frozen=True)
class StoredFile:
    """One Parquet file of the store, as the manifest lists it."""

    kind: str  # "events" or "superseded"
    aggregate_type: str
    bucket: int
    path: str  # relative to the store root, always events/<type>/<name> or superseded/...
    rows: int
    event_min: int  # epoch microseconds
    event_max: int
    processed_min: int
    processed_max: int
    bytes: int | None = None  # None only in version 1 manifests
    sha256: str | None = None

    def to_json(self) -> dict:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Manifest:
    buckets: int
    next_delivery: int
    generation: int
    files: tuple[StoredFile, ...]
    identity: tuple[str, ...] = ()  # the optional identity columns its events carry

    @classmethod
    def new(cls, buckets: int) -> Manifest:
        return cls(buckets=buckets, next_delivery=0, generation=0, files=())

    @classmethod
    def load(cls, root: Path) -> Manifest:
        path = root / MANIFEST
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise SourceError(
                f"{str(root)!r} is not a concursus-lab store (no {MANIFEST}). Create one with "
                f"`cl.open({str(root)!r}, create=True)`, or write the sample there with "
                f"`concursus-lab sample {root}`."
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreDamaged(f"{str(path)!r} is damaged ({exc}); {_RESTORE}") from exc
        except OSError as exc:
            raise StoreDamaged(f"{str(path)!r} cannot be read ({exc}).") from exc
        return _parse(raw, root, path)

    def save(self, root: Path) -> None:
        body = {
            "format": FORMAT,
            "version": IDENTITY_VERSION if self.identity else FORMAT_VERSION,
            "buckets": self.buckets,
            "next_delivery": self.next_delivery,
            "generation": self.generation,
            **({"identity": list(self.identity)} if self.identity else {}),
            "files": [f.to_json() for f in self.files],
        }
        tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "w") as out:
                json.dump(body, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, root / MANIFEST)
        except BaseException:  # a full disk, say: the old manifest stands, and no draft is left
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_folder(root)


_RESTORE = "restore it from a backup, or copy the store's readable files to a new store."


def _parse(raw: Any, root: Path, path: Path) -> Manifest:
    def damaged(what: str) -> StoreDamaged:
        return StoreDamaged(f"{str(path)!r} is damaged: {what}; {_RESTORE}")

    if not isinstance(raw, dict):
        raise damaged(f"it holds a {type(raw).__name__}, not an object")
    if raw.get("format") != FORMAT or raw.get("version") not in READABLE_VERSIONS:
        raise SourceError(
            f"{str(path)!r} is format {raw.get('format')!r} version {raw.get('version')!r};"
            f" this concursus-lab reads {FORMAT!r} versions {list(READABLE_VERSIONS)}. "
            "Upgrade concursus-lab, or copy the store with the version that wrote it."
        )
    for key, least in (("buckets", 1), ("next_delivery", 0), ("generation", 0)):
        value = raw.get(key)
        if not _is_int(value) or value < least:
            raise damaged(f"{key!r} must be an int of at least {least}, got {value!r}")
    files = raw.get("files")
    if not isinstance(files, list):
        raise damaged(f"'files' must be a list, got {files!r:.80}")
    proof = _PROOF if raw["version"] >= 2 else {}
    parsed = tuple(_parse_file(entry, i, proof, root, damaged) for i, entry in enumerate(files))
    identity = raw.get("identity") if raw["version"] >= IDENTITY_VERSION else []
    if raw["version"] >= IDENTITY_VERSION and not _identity_columns(identity):
        raise damaged(
            f"'identity' must list some of {list(IDENTITY_COLUMNS)}, in that order, got "
            f"{identity!r:.80}"
        )
    return Manifest(
        raw["buckets"], raw["next_delivery"], raw["generation"], parsed, tuple(identity)
    )


def _identity_columns(value: Any) -> bool:
    """Whether ``value`` lists some optional identity columns, in their order."""
    return (
        isinstance(value, list)
        and bool(value)
        and value == [c for c in IDENTITY_COLUMNS if c in value]
    )


def _parse_file(entry: Any, i: int, proof: dict, root: Path, damaged: Any) -> StoredFile:
    fields = {**_FIELDS, **proof}
    if not isinstance(entry, dict) or set(entry) != set(fields):
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise damaged(f"files[{i}] must have the keys {sorted(fields)}, got {keys}")
    for key, types in fields.items():
        value = entry[key]
        if not isinstance(value, types) or (int in types and not _is_int(value)):
            raise damaged(f"files[{i}].{key} must be {types[0].__name__}, got {value!r:.80}")
    if entry["kind"] not in KINDS:
        raise damaged(f"files[{i}].kind must be one of {list(KINDS)}, got {entry['kind']!r}")
    if proof and (entry["bytes"] < 0 or len(entry["sha256"]) != 64):
        raise damaged(f"files[{i}] has no valid size and SHA-256 ({entry['sha256']!r:.80})")
    expected = data_folder(entry["kind"], entry["aggregate_type"])
    given = PurePosixPath(entry["path"])
    inside = (root / given).resolve().is_relative_to(root.resolve())
    if given.parent != expected or given.suffix != ".parquet" or not inside:
        raise damaged(
            f"files[{i}].path {entry['path']!r} is not a data file inside the store "
            f"(expected {expected!s}/<name>.parquet)"
        )
    return StoredFile(**entry)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def data_folder(kind: str, aggregate_type: str) -> PurePosixPath:
    """The folder, relative to the store root, that holds one kind of one type's files."""
    return PurePosixPath(kind) / urllib.parse.quote(aggregate_type, safe="")


def digest(path: Path) -> tuple[int, str]:
    """The size and SHA-256 of a file, as the manifest records them."""
    with open(path, "rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
        return os.fstat(handle.fileno()).st_size, sha


class Vanished(Exception):
    """A listed file is gone: a concurrent append may have replaced it (read the manifest
    again), or the store is damaged. Internal; never reaches users."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def verify(root: Path, files: Iterable[StoredFile]) -> None:
    """Check each file's size and SHA-256 against the manifest before it is read.

    Raises :class:`Vanished` for a missing file and :class:`StoreDamaged` for one whose
    bytes are not the bytes that were written. A file is hashed once per process for as long
    as its inode, size, modification and change times stay the same (any write through the
    file system changes the change time, which no user can set), so reading the same store
    again costs a ``stat`` per file, not a hash.
    """
    for f in files:
        path = root / f.path
        try:
            seen = _fingerprint(path)
            if f.sha256 is None or _VERIFIED.get(seen) == f.sha256:
                continue
            size, sha = digest(path)
        except FileNotFoundError:
            raise Vanished(f.path) from None
        except OSError as exc:
            raise StoreDamaged(f"store file {str(path)!r} cannot be read ({exc})") from exc
        if (size, sha) != (f.bytes, f.sha256):
            raise StoreDamaged(
                f"store file {str(path)!r} is damaged: {size:,} bytes with SHA-256 "
                f"{sha[:12]}…, but {MANIFEST} recorded {f.bytes:,} bytes with {f.sha256[:12]}…. "
                f"Restore the file from a backup; until then read the other aggregate types "
                f"or ids (a read opens only the files it needs)."
            )
        if len(_VERIFIED) >= _VERIFIED_MOST:
            _VERIFIED.pop(next(iter(_VERIFIED)))
        _VERIFIED[seen] = sha


_VERIFIED: dict[tuple, str] = {}  # fingerprint of a file checked in this process -> its hash
_VERIFIED_MOST = 65_536


def _fingerprint(path: Path) -> tuple:
    st = os.stat(path)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file inside ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
