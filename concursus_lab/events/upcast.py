"""Upcasting: stored rows of older event versions rewritten as the declared ones.

:func:`upcast` is the one place it happens. Every way rows become events (``decode``, the
replay plan of ``state_at``/``state_of``/``restatements``/``trace``, ``history``, the keyed
folds of ``project``, ``latest``/``index`` given ``types=``, and so Spark's buckets and the
widgets, which call those) passes its rows of the aggregate type through it first, after
duplicates are resolved, and decodes what it returns. The chain of upcasters
(``upcasters.py``) is followed step by step, one call per version group and step.

What the rows become:

* ``name``, ``version``, ``parameters`` and ``characteristics`` are the declared type's;
* a ``stored`` column (a struct of ``name``, ``version``, ``parameters`` and ``part``) holds
  the row as it was stored, null on rows that were not upcast; it is there whenever the
  types declare an upcaster, so a result's shape depends on the declarations, not the data;
* a **split** event becomes its parts, in place of the original and in the order of the
  upcaster's ``to`` (``stored.part`` counts them from 0). A part's identity is the
  original's plus its part number: deliveries of the original are resolved (duplicates,
  conflicts) before it is split, so the parts are never duplicates of each other. A part
  is replayed right after the parts before it (it has the original's event time, stream and
  sequence), within the causal rank of its own type. Counts of deliveries (``read``,
  ``duplicate``, ``conflicting``, ...) count stored rows; counts of events (``applied``,
  ``skipped``, ``undecodable``) count parts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.text import clip
from concursus_lab.common.time import when
from concursus_lab.events.shapes import Unframeable, frames_of, texts_of
from concursus_lab.events.upcasters import STORED, STORED_DTYPE, Key, Upcaster, show
from concursus_lab.exceptions import UpcastError
from concursus_lab.frame import canonical_json

_WORK = ("__row", "__path", "name", "version", "parameters")


@dataclasses.dataclass
class Upcast:
    """:func:`upcast`'s answer: the rows as the declared types, and (when a split made
    more rows than it was given) the input row of each, ``parent``; None when row i is the
    input's row i."""

    frame: pl.DataFrame
    parent: np.ndarray | None = None


class Watch:
    """What each step did, for ``concursus_lab.testing.check_upcasters``: per upcaster,
    events in, events out per target, and the first ``examples`` (before, afters)."""

    def __init__(self, examples: int = 3) -> None:
        self.examples = examples
        self.steps: dict[Key, dict[str, Any]] = {}

    def saw(self, step: Upcaster, before: pl.Series, after: list[pl.Series]) -> None:
        entry = self.steps.setdefault(
            step.source, {"in": 0, "out": [0] * len(step.targets), "examples": []}
        )
        entry["in"] += before.len()
        for k, texts in enumerate(after):
            entry["out"][k] += texts.len() - texts.null_count()
        room = self.examples - len(entry["examples"])
        if room > 0:
            afters = [t.head(room).to_list() for t in after]
            for i, text in enumerate(before.head(room).to_list()):
                entry["examples"].append((text, tuple(a[i] for a in afters)))


def upcast(types: Any, frame: pl.DataFrame, *, watch: Watch | None = None) -> Upcast:
    """``frame``'s rows of ``types``' aggregate type whose (name, version) has an upcaster,
    upcast along the chain to a declared type (see the module's docstring); other rows as
    they are. Without upcasters declared, ``frame`` itself."""
    if not types.upcasters or frame.schema.get(STORED) == STORED_DTYPE:  # none, or done
        return Upcast(frame)
    rows = _sources(types, frame)
    if len(rows) == 0:
        return Upcast(frame.with_columns(pl.lit(None, STORED_DTYPE).alias(STORED)))
    work = (
        frame.select("name", "version", "parameters")
        .gather(pl.Series(rows, dtype=pl.Int64))
        .with_columns(
            pl.Series("__row", rows, dtype=pl.Int64), pl.lit("", pl.String).alias("__path")
        )
        .select(_WORK)
    )
    done = _follow(types, work, frame, watch)
    return _assemble(types, frame, rows, done)


def _sources(types: Any, frame: pl.DataFrame) -> np.ndarray:
    """Positions of the rows an upcaster starts from."""
    pairs = list(types.chain)
    if len(pairs) <= 16:
        known = pl.any_horizontal(
            [(pl.col("name") == n) & (pl.col("version") == v) for n, v in pairs]
        )
    else:
        keys = [f"{n}\x00{v}" for n, v in pairs]
        known = pl.concat_str("name", pl.lit("\x00"), "version").is_in(keys)
    mine = (pl.col("aggregate_type") == types.aggregate_type) & known
    return frame.select(mine.arg_true()).to_series().to_numpy().astype(np.int64)


def _follow(types: Any, work: pl.DataFrame, frame: pl.DataFrame, watch: Watch | None):
    """Each row taken along the chain until it is a declared type: (__row, __path, name,
    version, parameters), a row per event (a split's parts with paths that sort in order)."""
    chain = types.chain
    done = []
    while work.height:
        following = []
        for (name, version), group in work.group_by("name", "version", maintain_order=True):
            step = chain.get((name, version))
            if step is None:
                kind = types.by_key[(name, version)].characteristics
                done.append(group.with_columns(pl.lit(kind, pl.Int32).alias("characteristics")))
            else:
                following += _step(step, group, frame, types.aggregate_type, watch)
        work = pl.concat(following) if following else work.clear()
    return pl.concat(done)


def _step(step: Upcaster, group: pl.DataFrame, frame, aggregate_type, watch) -> list:
    """One step over one version group: a frame per target, rows it leaves out dropped."""
    context = _Context(step, group, frame, aggregate_type)
    texts = group["parameters"]
    if step.form == "rename":
        after = [texts]
    elif step.form == "each":
        after = _each(step, texts, context)
    else:
        after = _columnar(step, texts, context)
    if watch is not None:
        watch.saw(step, texts, after)
    parts = []
    for k, (target, out) in enumerate(zip(step.targets, after, strict=True)):
        part = group.with_columns(
            pl.lit(target[0]).alias("name"), pl.lit(target[1]).alias("version"), out
        )
        if step.split:
            part = part.with_columns(pl.col("__path") + chr(48 + k)).filter(
                pl.col("parameters").is_not_null()
            )
        parts.append(part)
    return parts


def _columnar(step: Upcaster, texts: pl.Series, context: _Context) -> list[pl.Series]:
    function = step.function if step.form == "columns" else _declared(step)
    try:
        shaped = frames_of(texts)
    except Unframeable as exc:
        raise context.error(
            exc.position,
            f"its parameters cannot be a polars frame ({exc}); declare a per-event upcaster "
            "(each=) for it",
        ) from None
    pieces: list[list[pl.Series]] = [[] for _ in step.targets]
    for positions, params in shaped.groups:
        returned = _call(step, function, params, positions, context)
        for k, out in enumerate(returned):
            try:
                pieces[k].append(texts_of(out))
            except Exception as exc:
                raise context.error(
                    None, f"returned a frame that is not JSON ({type(exc).__name__}: {exc})"
                ) from exc
    bad = np.array([position for position, _ in shaped.bad], dtype=np.int64)
    nothing = pl.Series("parameters", [None] * len(bad), dtype=pl.String)
    pieces[0].append(texts.gather(pl.Series(bad)))  # decoding quarantines it, with the reason
    for more in pieces[1:]:
        more.append(nothing)
    order = np.concatenate([p for p, _ in shaped.groups] + [bad])
    back = None if (order[1:] > order[:-1]).all() else pl.Series(np.argsort(order))
    after = [pl.concat(p).alias("parameters") for p in pieces]
    return after if back is None else [a.gather(back) for a in after]


def _call(step, function, params, positions, context) -> list[pl.DataFrame]:
    try:
        returned = function(params)
    except Exception as exc:
        culprit = _culprit(function, params)
        if culprit is None:
            raise context.error(
                None,
                f"raised {type(exc).__name__}: {exc} on the {params.height:,} events of "
                f"{show(step.source)} together, and on none of them alone: a columnar "
                "upcaster must work row by row",
            ) from exc
        raise context.error(int(positions[culprit]), f"raised {type(exc).__name__}: {exc}") from exc
    frames = list(returned) if step.split and isinstance(returned, list | tuple) else [returned]
    if len(frames) != len(step.targets) or not all(
        isinstance(f, pl.DataFrame) and f.height == params.height for f in frames
    ):
        wanted = f"a list of {len(step.targets)} polars frames" if step.split else "a polars frame"
        raise context.error(
            None,
            f"returned {clip(repr(returned), 80)} for {params.height:,} events; it must return "
            f"{wanted} of {params.height:,} rows, one per event",
        )
    return frames


def _culprit(function: Callable, params: pl.DataFrame) -> int | None:
    """The row of ``params`` on which ``function`` raises alone (by halves), if one does."""
    lo, hi = 0, params.height
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _raises(function, params[lo:mid]):
            hi = mid
        elif _raises(function, params[mid:hi]):
            lo = mid
        else:
            return None
    return lo if hi - lo == 1 and _raises(function, params[lo:hi]) else None


def _raises(function: Callable, params: pl.DataFrame) -> bool:
    try:
        function(params)
    except Exception:
        return True
    return False


def _declared(step: Upcaster) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """The declared changes (rename, drop, add) as a function over a frame."""

    def change(params: pl.DataFrame) -> pl.DataFrame:
        params = params.rename({a: b for a, b in step.rename if a in params.columns})
        params = params.drop([d for d in step.drop if d in params.columns])
        for name, default in step.add:
            value = pl.lit(default)
            if name in params.columns and params[name].dtype != pl.Null:
                params = params.with_columns(pl.col(name).fill_null(value))
            else:
                params = params.with_columns(value.alias(name))
        return params

    return change


def _each(step: Upcaster, texts: pl.Series, context: _Context) -> list[pl.Series]:
    outs: list[list[str | None]] = [[None] * texts.len() for _ in step.targets]
    for i, text in enumerate(texts.to_list()):
        try:
            value = canonical_json.loads(text) if text is not None else None
        except canonical_json.NotCanonical:
            value = None
        if type(value) is not dict:  # decoding quarantines it, with the reason
            outs[0][i] = text
            continue
        try:
            result = step.function(value)
        except Exception as exc:
            raise context.error(i, f"raised {type(exc).__name__}: {exc}") from exc
        parts = list(result) if step.split and isinstance(result, list | tuple) else [result]
        if (
            len(parts) != len(step.targets)
            or not all(type(p) is dict or (p is None and step.split) for p in parts)
            or all(p is None for p in parts)
        ):
            wanted = (
                f"a list of {len(step.targets)} dicts (None leaves a part out; at least one)"
                if step.split
                else "a dict of the new parameters"
            )
            raise context.error(i, f"returned {clip(repr(result), 80)}; it must return {wanted}")
        for k, part in enumerate(parts):
            if part is not None:
                try:
                    outs[k][i] = canonical_json.dumps(part)
                except Exception as exc:
                    raise context.error(
                        i, f"returned parameters that are not JSON ({exc})"
                    ) from exc
    return [pl.Series("parameters", out, dtype=pl.String) for out in outs]


@dataclasses.dataclass
class _Context:
    """What an error names: the step, and each row's event as stored."""

    step: Upcaster
    group: pl.DataFrame
    frame: pl.DataFrame
    aggregate_type: str

    def error(self, position: int | None, what: str) -> UpcastError:
        label = f"the upcaster {self.step.label}"
        if position is None:
            return UpcastError(f"{label} {what}.", None, None)
        row = int(self.group["__row"][position])
        event = self.frame.row(row, named=True)
        at = self.group["parameters"][position]
        now = "" if at == event["parameters"] else f", at this step {clip(str(at), 120)}"
        return UpcastError(
            f"{label} {what}, on {self.aggregate_type} {event['aggregate_id']!r}'s event "
            f"{show((event['name'], event['version']))} at {when(event['event_timestamp'])} "
            f"UTC (stored parameters {clip(str(event['parameters']), 120)}{now}).",
            event["aggregate_id"],
            event,
        )


def _assemble(types: Any, frame: pl.DataFrame, rows: np.ndarray, done: pl.DataFrame) -> Upcast:
    """``frame`` with the upcast rows (``done``) in place of theirs, a split's parts in
    order."""
    n = frame.height
    is_upcast = np.zeros(n, dtype=bool)
    is_upcast[rows] = True
    split = done.height != len(rows) or (done["__path"] != "").any()
    if not split:  # row for row: each upcast row is written over its own
        out, parent, positions, part = frame, None, done["__row"], pl.lit(0, pl.Int32)
    else:
        done = done.sort("__row", "__path")
        source_rows = done["__row"].to_numpy()
        repeat = np.ones(n, dtype=np.int64)
        repeat[rows] = 0
        np.add.at(repeat, source_rows, 1)
        parent = np.repeat(np.arange(n, dtype=np.int64), repeat)
        out = frame.gather(pl.Series(parent))
        positions = pl.Series(np.flatnonzero(is_upcast[parent]))
        part = np.zeros(out.height, dtype=np.int32)
        part[positions.to_numpy()] = done.select(
            pl.int_range(pl.len(), dtype=pl.Int32).over("__row")
        ).to_series()
        part = pl.Series(part)
        is_upcast = is_upcast[parent]
    stored = pl.when(pl.Series(is_upcast)).then(
        pl.struct("name", "version", "parameters", part.alias("part"))
    )
    columns = {
        c: out[c].clone().scatter(positions, done[c])
        for c in ("name", "version", "parameters", "characteristics")
    }
    out = out.with_columns(stored.alias(STORED)).with_columns(**columns)
    return Upcast(out, parent)
