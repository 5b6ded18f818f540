"""``cl.frame.schemas``: what shapes a history's events had, and how they drifted.

Per aggregate type, event name and version, the *shapes* its parameters had (each shape a
set of keys and each key's JSON kind, ``json_kinds.py``), how many events had each, and when
each was first and last seen on both time axes. Three things are flagged, because each is
where a fold or an upcaster meets data it did not expect:

* **a key whose kind changes within one version** (``weight`` an integer here, a string
  there): a declared parameter decodes only one kind;
* **a new key set without a new version** (``priority`` appeared, the version stayed): an
  upcaster keyed on the version cannot tell the two apart;
* **a version that comes back after a newer one** (v0 events processed after the first v1):
  an old writer still running, or a replay of old data.

Each distinct ``parameters`` text is parsed once (Python's orjson, integers exact); the
rest is polars. ``cl.plot.versions`` draws the versions of each event name over processing
time.

>>> import concursus_lab as cl
>>> events = cl.sample.parcels(20, seed=1)
>>> found = cl.frame.schemas(events)
>>> found.frame.select("name", "version", "keys", "kinds", "events").sort("name").rows()[0]
('delivered', '0', ['destinationId'], ['string'], 20)
>>> found.flags.height
0
"""

from __future__ import annotations

import dataclasses

import orjson
import polars as pl

from concursus_lab.common.printed import Printed
from concursus_lab.common.time import when
from concursus_lab.frame.json_kinds import shape_of
from concursus_lab.frame.schema import validate

#: The flags :func:`schemas` raises, as its ``flags`` frame names them.
FLAGS = ("kind changes", "new key set", "version comes back")
#: Shapes the printed summary lists before it says how many more there are.
SHOWN = 40
#: The shape of parameters that are not a JSON object.
NOT_AN_OBJECT = "<not a JSON object>"

_TIME = pl.Datetime("us", "UTC")
_GROUP = ("aggregate_type", "name", "version")


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Schemas(Printed):
    """What :func:`schemas` found: ``frame`` (a row per aggregate type, name, version and
    shape: ``keys``, ``kinds``, ``events``, first and last ``event_timestamp`` and
    ``processing_timestamp``) and ``flags`` (``aggregate_type``, ``name``, ``version``,
    ``flag``, one of :data:`FLAGS`, and ``detail``). Printed, a short deterministic
    summary."""

    frame: pl.DataFrame
    flags: pl.DataFrame
    events: int

    def summary(self) -> str:
        """The shapes per aggregate type and event name, then the flags."""
        f = self.frame
        lines = [
            f"Schemas of {self.events:,} events: {f['aggregate_type'].n_unique():,} aggregate "
            f"types, {f.select('aggregate_type', 'name').n_unique():,} event names, "
            f"{f.select(_GROUP).n_unique():,} versions, {f.height:,} shapes, "
            f"{self.flags.height:,} flags"
        ]
        width = max((len(n) for n in f["name"]), default=0)
        shown, last = 0, (None, None)
        for row in f.head(SHOWN).iter_rows(named=True):
            if row["aggregate_type"] != last[0]:
                lines.append(row["aggregate_type"])
            name = row["name"] if (row["aggregate_type"], row["name"]) != last else ""
            last = (row["aggregate_type"], row["name"])
            lines.append(
                f"  {name:<{width}}  v{row['version']:<3} {row['shape']:<40} "
                f"{row['events']:>8,} events, processed {when(row['first_processed'])} .. "
                f"{when(row['last_processed'])}"
            )
            shown += 1
        if f.height > shown:
            lines.append(f"  ... and {f.height - shown:,} more shapes (see .frame)")
        lines += [
            f"! {r['aggregate_type']} {r['name']} v{r['version']}: {r['detail']}"
            for r in self.flags.iter_rows(named=True)
        ]
        return "\n".join(lines)


def schemas(events: pl.DataFrame) -> Schemas:
    """The shapes of a history's events per aggregate type, name and version, and where
    they drifted (see the module's docstring).

    Parameters
    ----------
    events
        A canonical event frame (every delivery counts: a shape is what was written).

    Returns
    -------
    Schemas
        ``.frame``: ``aggregate_type``, ``name``, ``version``, ``shape`` (``key: kind, ...``,
        keys sorted, as one text), ``keys``, ``kinds``, ``events``, ``first_event``,
        ``last_event``, ``first_processed``, ``last_processed``; sorted by aggregate type,
        name, version (numbers as numbers) and first processing time. ``.flags``, and a
        printed summary.
    """
    frame = validate(events, check_parameters=False)
    texts = frame["parameters"].unique()
    parsed = [_shape_of(t) for t in texts.to_list()]
    listed = pl.List(pl.String)
    shapes = pl.DataFrame(
        {
            "parameters": texts,
            "shape": [_shape_text(shape) for shape in parsed],
            "keys": [[k for k, _ in shape or ()] for shape in parsed],
            "kinds": [[kind for _, kind in shape or ()] for shape in parsed],
        },
        schema={"parameters": pl.String, "shape": pl.String, "keys": listed, "kinds": listed},
    )
    rows = frame.select(*_GROUP, "event_timestamp", "processing_timestamp", "parameters").join(
        shapes, on="parameters", how="left", nulls_equal=True
    )
    table = (
        rows.group_by(*_GROUP, "shape")
        .agg(
            pl.col("keys").first(),
            pl.col("kinds").first(),
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("event_timestamp").min().alias("first_event"),
            pl.col("event_timestamp").max().alias("last_event"),
            pl.col("processing_timestamp").min().alias("first_processed"),
            pl.col("processing_timestamp").max().alias("last_processed"),
        )
        .with_columns(_version_order())
        .sort("aggregate_type", "name", "__order", "version", "first_processed", "shape")
    )
    flags = pl.concat(
        [_kind_changes(table), _new_key_sets(table), _comebacks(table, rows)], how="vertical"
    ).sort("aggregate_type", "name", "__order", "version", "flag", "detail")
    columns = [
        *_GROUP,
        "shape",
        "keys",
        "kinds",
        "events",
        "first_event",
        "last_event",
        "first_processed",
        "last_processed",
    ]
    return Schemas(table.select(columns), flags.drop("__order"), frame.height)


def _shape_of(text: str | None) -> tuple[tuple[str, str], ...] | None:
    """The shape of a parameters text, None when it is not a JSON object."""
    try:
        value = orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        return None
    return shape_of(value) if type(value) is dict else None


def _shape_text(shape: tuple[tuple[str, str], ...] | None) -> str:
    """A shape as one text: ``key: kind, ...`` (keys sorted), ``()`` for no parameters."""
    if shape is None:
        return NOT_AN_OBJECT
    return ", ".join(f"{key}: {kind}" for key, kind in shape) or "()"


def _version_order() -> pl.Expr:
    """Versions that are integers in their numeric order, before other texts."""
    number = pl.col("version").cast(pl.Int64, strict=False)
    return pl.when(number.is_not_null()).then(number).otherwise(None).alias("__order")


def _flag(frame: pl.DataFrame, flag: str, detail: pl.Expr) -> pl.DataFrame:
    return frame.select(*_GROUP, "__order", pl.lit(flag).alias("flag"), detail.alias("detail"))


def _kind_changes(table: pl.DataFrame) -> pl.DataFrame:
    """A key seen with more than one kind (null aside) within one version."""
    pairs = (
        table.select(*_GROUP, "__order", "keys", "kinds", "events")
        .explode("keys", "kinds")
        .filter(pl.col("keys").is_not_null(), pl.col("kinds") != "null")
        .group_by(*_GROUP, "__order", "keys", "kinds")
        .agg(pl.col("events").sum())
        .sort("kinds")
    )
    changed = pairs.group_by(*_GROUP, "__order", "keys").agg(
        (pl.col("kinds") + " in " + pl.col("events").cast(pl.String) + " events").alias("seen"),
        pl.len().alias("n"),
    )
    detail = pl.format(
        "key '{}' changes kind within the version: {}", "keys", pl.col("seen").list.join(", ")
    )
    return _flag(changed.filter(pl.col("n") > 1), FLAGS[0], detail)


def _new_key_sets(table: pl.DataFrame) -> pl.DataFrame:
    """A version whose events have more than one set of keys."""
    sets = (
        table.with_columns(pl.col("keys").list.join(", ").alias("key_set"))
        .group_by(*_GROUP, "__order", "key_set")
        .agg(pl.col("first_processed").min(), pl.col("events").sum())
        .sort("first_processed", "key_set")
    )
    seen = sets.group_by(*_GROUP, "__order", maintain_order=True).agg(
        pl.format(
            "{{{}}} from {} ({} events)",
            "key_set",
            pl.col("first_processed").dt.strftime("%Y-%m-%d %H:%M:%S"),
            "events",
        ).alias("seen"),
        pl.len().alias("n"),
    )
    detail = pl.format(
        "{} key sets without a new version: {}", "n", pl.col("seen").list.join(", then ")
    )
    return _flag(seen.filter(pl.col("n") > 1), FLAGS[1], detail)


def _comebacks(table: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """An older version processed after a newer one's first event (versions in order:
    integers by value, else by when each was first processed)."""
    versions = (
        table.group_by(*_GROUP, "__order")
        .agg(pl.col("first_processed").min().alias("since"))
        .with_columns(
            pl.struct(pl.col("__order").fill_null(2**62), "since")
            .rank("dense")
            .over("aggregate_type", "name")
            .alias("rank")
        )
    )
    later = versions.join(versions, on=["aggregate_type", "name"], suffix="_newer").filter(
        pl.col("rank_newer") > pl.col("rank")
    )
    back = (
        rows.join(later, on=list(_GROUP))
        .filter(pl.col("processing_timestamp") > pl.col("since_newer"))
        .group_by(*_GROUP, "__order", "version_newer", "since_newer")
        .agg(pl.len().alias("n"), pl.col("processing_timestamp").max().alias("last"))
        .sort("since_newer")
        .unique(list(_GROUP), keep="first", maintain_order=True)
    )
    detail = pl.format(
        "comes back after v{}: {} events processed after its first ({}), the last at {}",
        "version_newer",
        "n",
        pl.col("since_newer").dt.strftime("%Y-%m-%d %H:%M:%S"),
        pl.col("last").dt.strftime("%Y-%m-%d %H:%M:%S"),
    )
    return _flag(back, FLAGS[2], detail)
