"""``state_at(..., into=folder)``: every aggregate's state written out a bucket at a time.

An answer can be larger than memory when the history is: 100M sample events are about 31M
parcels, and ``state_at`` keeps every state as a Python object beside its row (about 0.6 KB a
parcel, some 19 GB). With ``into=``, the history is folded a hash bucket of whole aggregates
at a time (:mod:`~concursus_lab.timetravel.buckets`) and each bucket's states are written to
``folder/part-NNNNN.parquet`` (the columns of :attr:`StateAt.frame
<concursus_lab.timetravel.state_at.StateAt.frame>`, sorted by id) as soon as they are folded,
then let go: the peak is a bucket's, whatever the number of aggregates.

:class:`StateFiles`, the answer, keeps what is small (the question, the counts, the rows that
did not decode) and reads the states back lazily: :meth:`StateFiles.scan` (a polars
``LazyFrame`` over the files) or :attr:`StateFiles.frame` (read whole, the frame the in-memory
answer has). Conflicting deliveries are warned about once, as in memory.

The folder must be new or empty: a run never mixes its files with another's. Each file
appears whole (written under a temporary name, then renamed); a run that stops (interrupted,
a full disk, a reducer's error) says which buckets it wrote and which it did not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from concursus_lab.common.whole_file import write_whole
from concursus_lab.exceptions import IncompleteWrite, SchemaError
from concursus_lab.frame import conflicts
from concursus_lab.timetravel.buckets import bucket_reader, each_bucket
from concursus_lab.timetravel.summary import summary_lines

#: A bucket's file in the folder: ``part-00000.parquet``, ``part-00001.parquet``, ...
PART = "part-{:05d}.parquet"

#: The columns every state frame ends with (the state's own columns come first).
TAIL = ("events_applied", "last_event_timestamp")


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class StateFiles:
    """States of every aggregate at one time, written to ``folder``, one Parquet file a bucket.

    Attributes
    ----------
    folder, files
        Where the states are: one file per bucket of whole aggregates, each sorted by
        ``aggregate_id``.
    aggregate_type, at, known_at
        The question asked.
    counts, undecodable
        As :class:`~concursus_lab.timetravel.state_at.StateAt`'s: what became of every
        delivery, and the rows that could not be decoded.
    states_written
        How many states the files hold (one row each).
    """

    folder: Path
    files: tuple[Path, ...]
    aggregate_type: str
    at: dt.datetime | None
    known_at: dt.datetime | None
    counts: dict[str, int]
    undecodable: pl.DataFrame
    states_written: int

    def scan(self) -> pl.LazyFrame:
        """The states as one lazy frame, a bucket's rows after another's (each bucket
        sorted by id; sort by ``aggregate_id`` for the order of :attr:`frame`)."""
        parts = [pl.scan_parquet(path) for path in self.files]
        # a bucket without states shows placeholder columns where nothing says their shape
        held = [p for p in parts if p.select(pl.len()).collect().item()] or parts[:1]
        every = pl.concat(held, how="diagonal_relaxed")
        return every.select(pl.exclude(*TAIL), *TAIL)

    @functools.cached_property
    def frame(self) -> pl.DataFrame:
        """Every state read back into memory, sorted by ``aggregate_id``: the frame
        ``state_at`` without ``into=`` gives (read on first use)."""
        return self.scan().collect().sort("aggregate_id")

    @property
    def states(self) -> dict[str, Any]:
        """Not kept: the state objects were let go once written (use :attr:`frame`)."""
        raise SchemaError(
            f"the states were written to {str(self.folder)!r} as columns, not kept as "
            "objects: read them with `.frame` or `.scan()`, or fold without `into=` to get "
            "`.states`."
        )

    @property
    def skipped(self) -> int:
        """Events skipped by the creation rules."""
        return self.counts["skipped"]

    @property
    def applied(self) -> int:
        """Events the reducer saw."""
        return self.counts["applied"]

    def summary(self) -> str:
        """The in-memory answer's summary, and where the states are."""
        lines = summary_lines(
            self.states_written,
            self.aggregate_type,
            self.at,
            self.known_at,
            self.counts,
            self.undecodable,
        )
        lines.append(f"written to {self.folder} ({len(self.files)} Parquet files)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        try:
            return "<p>" + "<br>".join(map(html.escape, self.summary().splitlines())) + "</p>"
        except Exception as exc:
            return f"<pre>{html.escape(repr(exc))}</pre>"

    def __len__(self) -> int:
        return self.states_written


def write_states(
    events: Any,
    buckets: int | None,
    fold: Callable[[pl.DataFrame], Any],
    into: str | os.PathLike,
    *,
    progress: bool | None,
) -> StateFiles:
    """Fold ``events`` a bucket at a time (``fold``: a bucket's rows -> its ``StateAt``),
    writing each bucket's frame to ``into`` as it goes; conflicts warned about once."""
    folder = empty_folder(into)
    n, _ = bucket_reader(events, buckets)  # checks `buckets` before anything is written
    files: list[Path] = []
    answers: list[tuple[dict[str, int], pl.DataFrame]] = []
    states, first = 0, None
    with conflicts.one_warning(disjoint=True):
        parts = each_bucket(events, n, fold, progress=progress, what="state_at")
        try:
            for b, answer in enumerate(parts):
                files.append(_write(answer.frame, folder / PART.format(b)))
                states += answer.frame.height
                answers.append((answer.counts, answer.undecodable))
                first = answer if first is None else first
        except (KeyboardInterrupt, OSError) as exc:
            raise _stopped(folder, files, n, states, exc) from exc
        except Exception as exc:
            exc.add_note(_written(folder, files, n, states))
            raise
    keys = dict.fromkeys(k for c, _ in answers for k in c)
    counts = {k: sum(c.get(k, 0) for c, _ in answers) for k in keys}
    undecodable = pl.concat([u for _, u in answers], how="diagonal_relaxed")
    return StateFiles(
        folder,
        tuple(files),
        first.aggregate_type,
        first.at,
        first.known_at,
        counts,
        undecodable,
        states,
    )


def empty_folder(into: str | os.PathLike) -> Path:
    """``into`` as a folder made now or found empty; anything else is refused."""
    if not isinstance(into, str | os.PathLike):
        raise SchemaError(f"`into` must be a folder's path, got {into!r}.")
    folder = Path(into).expanduser()
    if folder.exists() and not folder.is_dir():
        raise SchemaError(f"`into` must be a folder, but {str(folder)!r} is a file.")
    if folder.is_dir():
        held = sorted(p.name for p in folder.iterdir())
        if held:
            shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise SchemaError(
                f"`into` folder {str(folder)!r} is not empty (it holds {len(held):,} "
                f"entries: {shown}), so no states were written there. Choose a new or "
                "empty folder (states of two runs are never mixed)."
            )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write(frame: pl.DataFrame, path: Path) -> Path:
    """``frame`` written to ``path`` whole or not at all (a temporary name, then renamed)."""
    objects = [name for name, dtype in frame.schema.items() if dtype == pl.Object]
    if objects:
        raise SchemaError(
            f"the states' column {objects[0]!r} holds Python objects, which Parquet cannot "
            "hold: return a dataclass, named tuple or dict of plain values from the reducer, "
            "or fold without `into=`."
        )
    return write_whole(path, frame.write_parquet)


def _written(folder: Path, files: list[Path], n: int, states: int) -> str:
    """What a run that stopped left in ``folder``."""
    if not files:
        return f"No states were written to {str(folder)!r} (0 of {n} buckets)."
    names = files[0].name if len(files) == 1 else f"{files[0].name} .. {files[-1].name}"
    return (
        f"{len(files)} of {n} buckets were written to {str(folder)!r} ({names}, "
        f"{states:,} states: those buckets' aggregates, complete); the other "
        f"{n - len(files)} buckets' states were not. Empty the folder (or choose another) "
        "and run again for the whole answer."
    )


def _stopped(folder: Path, files: list[Path], n: int, states: int, cause: BaseException):
    why = (
        "it was interrupted"
        if isinstance(cause, KeyboardInterrupt)
        else f"{type(cause).__name__}: {cause}"
    )
    return IncompleteWrite(
        f"state_at into {str(folder)!r} stopped because {why}. "
        + _written(folder, files, n, states),
        written=states,
    )
