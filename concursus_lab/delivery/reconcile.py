"""Do two copies of one history agree? Reconcile a Kafka topic with the Cassandra table it feeds.

Events are matched on their identity (aggregate type, aggregate id, event timestamp, stream
id: Cassandra's primary key; or ``event_id`` or ``sequence`` when both frames have one,
see ``frame/identity.py``). Each side is first reduced to one row per identity, the last
processed delivery winning, as a Cassandra upsert would (ties broken by Kafka's partition
and offset when the frame has them, then by row position), so a topic's repeated
deliveries are not differences; repeats that conflict within a side are warned about.
Then:

* ``only_in_a`` / ``only_in_b``: identities one side has and the other lacks (a consumer
  that lost events, a write that never reached the topic);
* ``changed``: identities on both sides whose *payload* differs.

The payload is what the event says: ``name``, ``version``, ``parameters`` and
``characteristics``. Processing id and time are not payload: they record when a copy was
logged, and differ legitimately between a topic and a table (a Kafka record without a
processing id takes its record timestamp). Pass ``fields=`` to compare other columns too.
``parameters`` are compared as JSON values, so key order and spacing are not differences.

>>> import concursus_lab as cl
>>> table = cl.sample.parcels(50, seed=1)
>>> topic = table.slice(1)  # the topic lost the first event
>>> print(cl.reconcile(topic, table, names=("kafka", "cassandra")))
kafka vs cassandra: 151 events agree, 0 changed, 0 only in kafka, 1 only in cassandra
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import canonical_json, conflicts
from concursus_lab.frame.conflicts import Conflicts
from concursus_lab.frame.identity import decide, identity_hash, identity_of
from concursus_lab.frame.schema import validate

#: The columns compared by default: what an event says, not when a copy was logged.
PAYLOAD: tuple[str, ...] = ("name", "version", "parameters", "characteristics")


@dataclass(frozen=True)
class Reconciliation:
    """What :func:`reconcile` found; prints as one line.

    Attributes
    ----------
    names
        What the two sides are called, e.g. ``("kafka", "cassandra")``.
    only_in_a, only_in_b
        The rows (one per identity, every column of that side) that the other side lacks.
    changed
        One row per identity on both sides with a different payload: the identity columns,
        ``differs`` (the names of the fields that differ, a list), then each compared field
        from both sides, suffixed with the side's name (``parameters_kafka``,
        ``parameters_cassandra``, ...). Sorted by identity.
    agree
        Identities on both sides with the same payload.
    fields
        The columns compared.
    repeats
        Deliveries beyond the first of each identity, per side, collapsed before comparing.
    """

    names: tuple[str, str]
    only_in_a: pl.DataFrame
    only_in_b: pl.DataFrame
    changed: pl.DataFrame
    agree: int
    fields: tuple[str, ...]
    repeats: tuple[int, int]

    @property
    def equal(self) -> bool:
        """True when both sides hold the same events with the same payloads."""
        return not (self.only_in_a.height or self.only_in_b.height or self.changed.height)

    def differing_fields(self) -> dict[str, int]:
        """How many changed events differ in each field, e.g. ``{"parameters": 1}``."""
        if self.changed.height == 0:
            return {}
        counts = self.changed.select(pl.col("differs").explode().value_counts(sort=True))
        pairs = counts.to_series().to_list()
        return {p["differs"]: int(p["count"]) for p in sorted(pairs, key=_by_count)}

    def __str__(self) -> str:
        a, b = self.names
        fields = self.differing_fields()
        detail = f" ({', '.join(f'{k} {v:,}' for k, v in fields.items())})" if fields else ""
        text = (
            f"{a} vs {b}: {self.agree:,} {'event agrees' if self.agree == 1 else 'events agree'}, "
            f"{self.changed.height:,} changed{detail}, "
            f"{self.only_in_a.height:,} only in {a}, {self.only_in_b.height:,} only in {b}"
        )
        collapsed = [f"{n:,} in {name}" for n, name in zip(self.repeats, self.names, strict=True)]
        if any(self.repeats):
            text += f" (repeated deliveries collapsed: {', '.join(collapsed)})"
        return text

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def reconcile(
    a: pl.DataFrame,
    b: pl.DataFrame,
    *,
    names: tuple[str, str] = ("a", "b"),
    fields: Sequence[str] = PAYLOAD,
) -> Reconciliation:
    """Compare two frames of the same history, identity by identity.

    See this module's docstring for what is compared. Neither frame is changed.

    Parameters
    ----------
    a, b
        Canonical event frames, e.g. ``kafka.events(duplicates="keep")`` and
        ``cassandra.events()``; extra columns are kept in ``only_in_a`` / ``only_in_b``.
    names
        What to call the two sides in the summary and in ``changed``'s column names.
    fields
        The columns whose difference makes an event *changed*; by default the payload,
        :data:`PAYLOAD`. Any column both frames have, other than the identity, may be named
        (``"processing_id"``, ``"processing_timestamp"``, an extra column).

    Returns
    -------
    Reconciliation
        ``.only_in_a``, ``.only_in_b``, ``.changed``, ``.agree`` and ``.equal``.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> table = cl.sample.parcels(20, seed=2)
    >>> topic = table.with_columns(
    ...     parameters=pl.when(pl.int_range(pl.len()) == 3)
    ...     .then(pl.lit('{"depotId":"Mars"}'))
    ...     .otherwise("parameters")
    ... ).head(60)
    >>> found = cl.reconcile(topic, table, names=("kafka", "cassandra"))
    >>> print(found)  # doctest: +NORMALIZE_WHITESPACE
    kafka vs cassandra: 59 events agree, 1 changed (parameters 1), 0 only in kafka,
    8 only in cassandra
    >>> found.changed.select("differs", "parameters_kafka").row(0)
    (['parameters'], '{"depotId":"Mars"}')
    """
    left_name, right_name = _names(names)
    left = validate(a, check_parameters=False)
    right = validate(b, check_parameters=False)
    keys = _identity(left, right)
    compared = _fields(fields, left, right, keys)
    left_one, left_hash, left_conflicts = _one_per_identity(left, keys)
    right_one, right_hash, right_conflicts = _one_per_identity(right, keys)
    conflicts.report(Conflicts.total([left_conflicts, right_conflicts]))
    in_a, in_b, only_a, only_b, paired = _match(left_one, right_one, left_hash, right_hash, keys)
    only_in_a = left_one[only_a]
    only_in_b = right_one[only_b]

    sa, sb = f"__{left_name}", f"__{right_name}"
    both = pl.concat(
        [
            paired,
            left_one.select(pl.col(f).alias(f + sa) for f in compared)[in_a],
            right_one.select(pl.col(f).alias(f + sb) for f in compared)[in_b],
        ],
        how="horizontal",
    )
    differs = {f: pl.col(f + sa).ne_missing(pl.col(f + sb)) for f in compared}
    suspects = both.filter(pl.any_horizontal(differs.values()) if differs else pl.lit(False))
    if "parameters" in compared and suspects.height:
        same_json = _same_json(suspects[f"parameters{sa}"], suspects[f"parameters{sb}"])
        suspects = suspects.with_columns(pl.Series("__same_json", same_json))
        differs["parameters"] = differs["parameters"] & ~pl.col("__same_json")
    else:
        suspects = suspects.with_columns(pl.lit(False).alias("__same_json"))
    labelled = pl.concat_list(
        [pl.when(d).then(pl.lit(f)).otherwise(None) for f, d in differs.items()]
    ).list.drop_nulls()
    changed = (
        suspects.with_columns(labelled.alias("differs"))
        .filter(pl.col("differs").list.len() > 0)
        .sort(keys)
        .select(
            *keys,
            "differs",
            *[
                pl.col(f + s).alias(f"{f}_{n}")
                for f in compared
                for s, n in ((sa, left_name), (sb, right_name))
            ],
        )
    )
    if not compared:
        changed = changed.with_columns(pl.col("differs").cast(pl.List(pl.String)))
    return Reconciliation(
        names=(left_name, right_name),
        only_in_a=only_in_a,
        only_in_b=only_in_b,
        changed=changed,
        agree=both.height - changed.height,
        fields=compared,
        repeats=(left.height - left_one.height, right.height - right_one.height),
    )


def _identity(left: pl.DataFrame, right: pl.DataFrame) -> tuple[str, ...]:
    """The identity both sides are matched on: each side's (``identity_of``), which must
    be the same one."""
    keys = identity_of(left)
    if identity_of(right) != keys:
        raise SchemaError(
            f"the two frames identify events differently: {keys} and {identity_of(right)} "
            "(a `sequence` or `event_id` column on one side only). Give both sides the same "
            "identity columns, or drop them from both to match on Concursus's identity."
        )
    return keys


def _one_per_identity(
    frame: pl.DataFrame, keys: tuple[str, ...]
) -> tuple[pl.DataFrame, pl.Series, Conflicts]:
    """The last processed delivery of each identity, a 64-bit hash of each identity, and
    the conflicting deliveries left out."""
    hashed = frame.select(identity_hash(keys)).to_series()
    decision = decide(frame, "last", hashes=hashed)
    if decision.mask is None:  # no identity delivered twice
        return frame, hashed, decision.conflicts
    keep = pl.Series(decision.mask)
    return frame.filter(keep), hashed.filter(keep), decision.conflicts


def _match(
    left: pl.DataFrame,
    right: pl.DataFrame,
    left_hash: pl.Series,
    right_hash: pl.Series,
    identity: tuple[str, ...],
) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series, pl.DataFrame]:
    """Row numbers of identities on both sides (paired), and of those on one side only.

    Also returns the paired identities themselves. Joins on the identity's 64-bit hash
    (one key instead of four, much faster); a hash shared by two identities is detected,
    and then the identity columns themselves are joined.
    """
    keys = list(identity)
    if left_hash.n_unique() == len(left_hash) and right_hash.n_unique() == len(right_hash):
        joined = (
            left_hash.to_frame("h")
            .with_row_index("a")
            .join(right_hash.to_frame("h").with_row_index("b"), on="h", how="full", coalesce=True)
        )
        pairs = joined.select("a", "b").drop_nulls().sort("a")
        paired = left.select(keys)[pairs["a"]]
        if paired.equals(right.select(keys)[pairs["b"]]):
            return pairs["a"], pairs["b"], *_alone(joined), paired
    # a hash shared by two identities: match on the identity itself
    joined = (
        left.select(keys)
        .with_row_index("a")
        .join(right.select(keys).with_row_index("b"), on=keys, how="full", coalesce=True)
    )
    pairs = joined.select("a", "b").drop_nulls().sort("a")
    return pairs["a"], pairs["b"], *_alone(joined), left.select(keys)[pairs["a"]]


def _alone(joined: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    only_a = joined.filter(pl.col("b").is_null())["a"].sort()
    only_b = joined.filter(pl.col("a").is_null())["b"].sort()
    return only_a, only_b


def _same_json(left: pl.Series, right: pl.Series) -> list[bool]:
    """Whether each pair of texts holds equal JSON values (unparseable texts never do)."""
    out = []
    for x, y in zip(left.to_list(), right.to_list(), strict=True):
        if x is None or y is None:
            out.append(x is None and y is None)
            continue
        try:
            out.append(canonical_json.loads(x) == canonical_json.loads(y))
        except canonical_json.NotCanonical:
            out.append(False)
    return out


def _names(names: tuple[str, str]) -> tuple[str, str]:
    ok = (
        isinstance(names, tuple | list)
        and len(names) == 2
        and all(isinstance(n, str) and n.isidentifier() for n in names)
        and names[0] != names[1]
    )
    if not ok:
        raise SchemaError(
            f"`names` must be two different words naming the sides, such as "
            f"('kafka', 'cassandra'); got {names!r}."
        )
    return names[0], names[1]


def _fields(
    fields: Sequence[str], left: pl.DataFrame, right: pl.DataFrame, keys: tuple[str, ...]
) -> tuple[str, ...]:
    if isinstance(fields, str):
        fields = [fields]
    chosen = tuple(dict.fromkeys(fields))
    identity = [f for f in chosen if f in keys]
    if identity:
        raise SchemaError(
            f"`fields` names identity column(s) {identity}: events are matched on the "
            f"identity {keys}, so it cannot differ. Leave them out."
        )
    shared = [c for c in left.columns if c in right.columns]
    missing = [f for f in chosen if f not in shared]
    if missing:
        import difflib

        hints = []
        for f in missing:
            near = difflib.get_close_matches(f, shared, 1)
            hints.append(f"{f!r} (did you mean {near[0]!r}?)" if near else repr(f))
        raise SchemaError(
            f"`fields` names column(s) not in both frames: {'; '.join(hints)}. "
            f"Both have: {', '.join(c for c in shared if c not in keys)}."
        )
    return chosen


def _by_count(pair: dict) -> tuple[int, str]:
    return (-int(pair["count"]), str(pair["differs"]))
