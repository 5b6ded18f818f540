"""What a journal row's keys and manifests say: the aggregate, the event's name and version.

* ``persistence_id``: Pekko's typed ``PersistenceId.of("ShoppingCart", "cart-007")`` writes
  ``ShoppingCart|cart-007``; that is aggregate type ``ShoppingCart`` and id ``cart-007``. An id
  without that form (``PersistenceId.ofUniqueId``, classic actors' own ids) is the aggregate id
  as a whole, of the aggregate type the source is told (``untyped=``, default ``"entity"``).
* ``ser_manifest``: Jackson writes the event's class name (``com.example.Cart$ItemAdded``),
  with ``#<version>`` after it when a Jackson migration declares one. The name is the class's
  short name (``ItemAdded``; a Scala object's trailing ``$`` dropped) or, with
  ``names="class"``, the whole class name.
* the version is the manifest's ``#N``, else the event adapter's manifest (``event_manifest``),
  else ``"0"``.

Pekko's plain serializers write no manifest: their events are named by the Java type they
serialize (``String``, ``Long``, ...).

>>> import polars as pl
>>> rows = pl.DataFrame({"persistence_id": ["ShoppingCart|cart-7", "solo"],
...                      "ser_id": [31, 20],
...                      "ser_manifest": ["com.example.Cart$ItemRemoved#2", ""],
...                      "event_manifest": ["", ""]})
>>> named(rows, "short", "entity").select(
...     "aggregate_type", "aggregate_id", "name", "version").rows()
[('ShoppingCart', 'cart-7', 'ItemRemoved', '2'), ('entity', 'solo', 'String', '0')]
"""

from __future__ import annotations

import polars as pl

from concursus_lab.exceptions import SourceError

#: The separator ``PersistenceId.of`` puts between entity type and id.
SEPARATOR = "|"
#: How events are named: by the class's short name, or by the whole class name.
NAMINGS = ("short", "class")

#: The names of events written by Pekko's plain serializers, which write no manifest.
PLAIN_NAMES: dict[int, str] = {
    4: "bytes",
    18: "Long",
    19: "Integer",
    20: "String",
    21: "ByteString",
    35: "Boolean",
}


def named(frame: pl.DataFrame, naming: str, untyped: str) -> pl.DataFrame:
    """``frame`` (journal rows) with ``aggregate_type``, ``aggregate_id``, ``name`` and
    ``version``: worked out once per distinct persistence id and manifest, which a journal
    repeats on every row of an entity and of an event type."""
    manifests = ["ser_id", "ser_manifest", "event_manifest"]
    kinds = frame.select(manifests).unique().with_columns(*event_name(naming))
    ids = (
        frame.select("persistence_id").unique().with_columns(*aggregate("persistence_id", untyped))
    )
    return frame.join(
        kinds, on=manifests, how="left", nulls_equal=True, maintain_order="left"
    ).join(ids, on="persistence_id", how="left", maintain_order="left")


def aggregate(column: str, untyped: str) -> tuple[pl.Expr, pl.Expr]:
    """``aggregate_type`` and ``aggregate_id`` from a persistence id column."""
    pid = pl.col(column)
    parts = pid.str.splitn(SEPARATOR, 2)
    head, tail = parts.struct.field("field_0"), parts.struct.field("field_1")
    typed = (head.str.len_bytes() > 0) & (tail.str.len_bytes() > 0)
    return (
        pl.when(typed).then(head).otherwise(pl.lit(untyped)).alias("aggregate_type"),
        pl.when(typed).then(tail).otherwise(pid).alias("aggregate_id"),
    )


def persistence_id(aggregate_type: str, aggregate_id: str, untyped: str) -> list[str]:
    """The persistence ids an aggregate may be stored under (both, for the untyped type)."""
    typed = f"{aggregate_type}{SEPARATOR}{aggregate_id}"
    return [aggregate_id, typed] if aggregate_type == untyped else [typed]


def event_name(naming: str) -> tuple[pl.Expr, pl.Expr]:
    """``name`` and ``version`` from ``ser_manifest``, ``event_manifest`` and ``ser_id``;
    the name is null where a Jackson event has no manifest (see :func:`why_unnamed`)."""
    manifest = pl.col("ser_manifest").fill_null("")
    parts = manifest.str.splitn("#", 2)
    cls, suffix = parts.struct.field("field_0"), parts.struct.field("field_1")
    short = cls.str.strip_suffix("$").str.extract(r"([^.$]*)$", 1)
    name = short if naming == "short" else cls
    plain = pl.col("ser_id").replace_strict(PLAIN_NAMES, default=None, return_dtype=pl.String)
    name = pl.when(name.str.len_bytes() > 0).then(name).otherwise(plain)
    adapter = pl.col("event_manifest").fill_null("")
    version = (
        pl.when(suffix.str.len_bytes() > 0)
        .then(suffix)
        .when(adapter.str.len_bytes() > 0)
        .then(adapter)
        .otherwise(pl.lit("0"))
    )
    return name.alias("name"), version.alias("version")


def why_unnamed() -> str:
    return (
        "no event name: the serializer wrote no manifest (Jackson with "
        "type-in-manifest = off), so nothing names the event's class"
    )


def check_naming(naming: str) -> str:
    if naming not in NAMINGS:
        raise SourceError(
            f"`names` must be 'short' (the class's short name, ItemAdded) or 'class' (the "
            f"whole class name), got {naming!r}."
        )
    return naming
