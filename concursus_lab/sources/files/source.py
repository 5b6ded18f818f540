"""Files of your own events (CSV, Parquet, NDJSON), read through a mapping.

``cl.open("orders.csv", mapping=cl.Mapping(...))`` reads a file, a folder of files of one
format, or a glob (``"exports/2026-*.parquet"``) with polars' lazy scans: nothing is read
until ``.events()`` is asked, and then only the columns the mapping uses, with the filters on
plain columns pushed into the scan. A mapping can also ride in the path's query string
(``orders.csv?aggregate_type=order&aggregate_id=order_id&...``), so that
``$CONCURSUS_LAB_SOURCE``, ``concursus-lab copy`` and ``check --source`` take it too.

Files that hold the canonical columns already (an export of an event frame) need no
mapping. Files are read, never written: ``append`` says how to copy them into a store.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import polars as pl

from concursus_lab.exceptions import SourceError
from concursus_lab.frame.schema import COLUMNS
from concursus_lab.frame.suggest import fitting
from concursus_lab.mapping import Mapping, Plan
from concursus_lab.mapping.quarantine import QUARANTINE
from concursus_lab.sources.base import Source
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query

#: File name endings this source reads, and their format.
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_GLOB = frozenset("*?[")
#: Rows CSV and NDJSON scans look at to choose each column's type.
INFER_ROWS = 10_000


def holds_files(path: str) -> bool:
    """Whether ``path`` (no scheme, no query) names event files rather than a store."""
    p = Path(path).expanduser()
    if any(c in path for c in _GLOB) or p.suffix.lower() in SUFFIXES:
        return not (p / "store.json").exists()
    if p.is_dir() and not (p / "store.json").exists():
        return any(f.suffix.lower() in SUFFIXES for f in p.iterdir() if f.is_file())
    return False


class FilesSource(Source):
    """Event files of your own shape; see the module docstring.

    Parameters
    ----------
    path
        A file, a folder of files of one format, or a glob; a query string may carry the
        mapping (:meth:`~concursus_lab.Mapping.from_query`).
    mapping
        How the files' columns map onto the canonical frame. None: the query string's, or the
        canonical columns themselves when the files have them.
    """

    takes_mapping = True

    def __init__(self, path: str | os.PathLike, *, mapping: Mapping | None = None) -> None:
        path, _, query = os.fspath(path).partition("?")
        if query and mapping is not None:
            raise SourceError(
                f"{path!r} has a mapping in its query string and mapping= was given too; "
                "give one of them."
            )
        self.url = os.fspath(path) + (f"?{query}" if query else "")
        self._files, self._format = _files(path)
        self.schema = self._scan().collect_schema()
        if query:
            mapping = Mapping.from_query(query)
        self.mapping = mapping if mapping is not None else self._canonical_or_refuse(path)
        self._plan = Plan(self.mapping, self.schema)
        self._quarantine = pl.DataFrame(schema=QUARANTINE)

    def _scan(self) -> pl.LazyFrame:
        files = [str(f) for f in self._files]
        try:
            if self._format == "parquet":
                return pl.scan_parquet(files)
            if self._format == "ndjson":
                return pl.scan_ndjson(files, infer_schema_length=INFER_ROWS)
            return pl.scan_csv(
                files,
                separator="\t" if self._format == "tsv" else ",",
                infer_schema_length=INFER_ROWS,
                try_parse_dates=False,
            )
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise SourceError(f"{self.url} cannot be read as {self._format}: {exc}") from exc

    def _canonical_or_refuse(self, path: str) -> Mapping:
        if set(COLUMNS) <= set(self.schema):
            named = {c: c for c in ("sequence", "event_id") if c in self.schema}
            return Mapping.concursus(**named)
        raise SourceError(_how_to_map(path, self.schema))

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        try:
            mapped = self._plan.run(self._scan(), prefilter=self._prefilter(query))
        except pl.exceptions.PolarsError as exc:
            raise SourceError(f"{self.url} could not be read: {exc}") from exc
        self._quarantine = mapped.quarantine
        warn_quarantined(self._quarantine, "row(s)", self.url, stacklevel=4)
        return query.apply(mapped.events)

    def _prefilter(self, query: Query) -> pl.Expr | None:
        """What of ``query`` can be asked of the files' own columns (pushed into the scan)."""
        parts = []
        field = self.mapping.aggregate_id
        ids = query.aggregate_ids
        if ids is not None and isinstance(field, str) and self.schema.get(field) == pl.String:
            parts.append(pl.col(field).is_in(list(ids)))
        kind, wanted = self.mapping.aggregate_type, query.aggregate_type
        if wanted is not None and isinstance(kind, str):
            parts.append(pl.lit(wanted == kind))
        elif wanted is not None and self.schema.get(_plain(kind)) == pl.String:
            parts.append(pl.col(_plain(kind)) == wanted)
        return pl.all_horizontal(parts) if parts else None

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        raise SourceError(
            f"{self.url} is read, never written (files of your own shape are yours). Copy them "
            f"into a store and append there: cl.copy(cl.open({self.url!r}, mapping=...), "
            "'data/my-store', create=True)."
        )

    @property
    def quarantine(self) -> pl.DataFrame:
        """The rows of the last read that did not map: ``reason``, ``row``, ``raw`` (JSON)."""
        return self._quarantine

    def __repr__(self) -> str:
        count = len(self._files)
        files = f"{count} {self._format} file{'s' if count != 1 else ''}"
        processing = (
            ""
            if self.mapping.maps_processing_time or "processing_timestamp" in self.schema
            else "; no processing time mapped: taken as event time, so no lateness shows"
        )
        return f"FilesSource({self.url!r}: {files}; {self.mapping!r}{processing})"


def _plain(field: pl.Expr) -> str | None:
    """The column a field reads as it is (``pl.col("kind")``), else None."""
    return field.meta.output_name() if field.meta.is_column() else None


def _files(path: str) -> tuple[list[Path], str]:
    p = Path(path).expanduser()
    if any(c in path for c in _GLOB):
        found = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    elif p.is_dir():
        found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
    elif p.is_file():
        found = [p]
    else:
        raise SourceError(f"no such file or folder: {path!r}.")
    if not found:
        raise SourceError(f"{path!r} names no files ({', '.join(SUFFIXES)}).")
    formats = {SUFFIXES.get(f.suffix.lower()) for f in found}
    if None in formats:
        odd = next(f for f in found if f.suffix.lower() not in SUFFIXES)
        raise SourceError(
            f"{str(odd)!r} is not a file this source reads ({', '.join(SUFFIXES)}); name the "
            "files of one format, e.g. a glob such as 'exports/*.csv'."
        )
    if len(formats) > 1:
        raise SourceError(
            f"{path!r} holds files of several formats ({', '.join(sorted(formats))}); open "
            "one format at a time, e.g. with a glob such as 'exports/*.parquet'."
        )
    return found, formats.pop()


def _how_to_map(path: str, schema: pl.Schema) -> str:
    guess = {
        "aggregate_id": fitting("aggregate_id", schema),
        "name": fitting("name", schema),
        "event_time": fitting("event_timestamp", schema),
        "processing_time": fitting("processing_timestamp", schema),
    }
    picked: list[str] = []
    fields = []
    for field, near in guess.items():
        near = [n for n in near if n not in picked]
        if near:
            picked.append(near[0])
            fields.append(f"{field}={near[0]!r}")
        elif field != "processing_time":
            fields.append(f"{field}='<column>'")
    columns = ", ".join(f"{n} ({t})" for n, t in list(schema.items())[:12])
    return (
        f"{path!r} holds events of its own shape (columns: {columns}), not a store: say how its "
        f"columns map onto events, e.g. cl.open({path!r}, mapping=cl.Mapping("
        f"aggregate_type='<type>', {', '.join(fields)})). See docs/own-events.md."
    )


__all__ = ["SUFFIXES", "FilesSource", "holds_files"]
