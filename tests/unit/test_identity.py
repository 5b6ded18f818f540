"""Identity you can trust (issue 30) and one tie rule (issue 28.6).

An event's identity is Concursus's key unless the frame names a ``sequence`` or an
``event_id``; the sequence breaks ties in causal order; two deliveries of one identity
that differ in name, version or parameters are *conflicting*: counted and warned about,
never merged without a word. Deliveries processed at the same instant are ordered by
Kafka's (partition, offset) when the frame carries them, then by row, everywhere.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import ConflictingDeliveries, SchemaError
from concursus_lab.frame.identity import content_ids, identity_of, resolve, winners
from concursus_lab.timetravel.history import STATUSES

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

orders = cl.EventTypes("order")


@orders.initial
class Created:
    amount: int


@orders.event
class Paid:
    amount: int


@orders.event
class Shipped:
    carrier: str


@orders.terminal
class Closed: ...


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def ev(cls, *args, minute=0.0, known=None, order="o1", stream=""):
    return cls(
        *args,
        aggregate_id=order,
        event_timestamp=at(minute),
        processing_timestamp=at(minute if known is None else known),
        stream_id=stream,
    )


def names(state, event):
    """A reducer keeping the names of the events it saw, in order."""
    return (*(state or ()), type(event).__name__)


def created_and_paid() -> pl.DataFrame:
    """``created`` and ``paid`` of one order in the same minute, as minute-grained exports
    have them: Concursus's identity cannot tell them apart."""
    return orders.encode([ev(Created, 5, known=1), ev(Paid, 5, known=2)])


@pytest.fixture
def no_conflict_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConflictingDeliveries)
        yield


# ----------------------------------------------------------------- which columns identify


def test_identity_of_follows_the_columns_present():
    frame = created_and_paid()
    assert identity_of(frame) == cl.IDENTITY
    with_seq = frame.with_columns(sequence=pl.Series([1, 2], dtype=pl.Int64))
    assert identity_of(with_seq) == ("aggregate_type", "aggregate_id", "sequence")
    with_id = frame.with_columns(event_id=pl.Series(["e1", "e2"]))
    assert identity_of(with_id) == ("aggregate_type", "aggregate_id", "event_id")
    both = with_seq.with_columns(event_id=pl.Series(["e1", "e2"]))
    assert identity_of(both) == ("aggregate_type", "aggregate_id", "event_id")
    # a LazyFrame, a schema or column names answer the same
    assert (
        identity_of(with_seq.lazy())
        == identity_of(with_seq.schema)
        == identity_of(with_seq.columns)
    )
    assert cl.frame.identity_of is identity_of


def test_validate_checks_the_optional_identity_columns():
    frame = created_and_paid()
    with pytest.raises(SchemaError, match=r"`sequence`.*Int64"):
        cl.frame.validate(frame.with_columns(sequence=pl.Series(["1", "2"])))
    with pytest.raises(SchemaError, match="`sequence` has 1 null"):
        cl.frame.validate(frame.with_columns(sequence=pl.Series([1, None], dtype=pl.Int64)))
    with pytest.raises(SchemaError, match="`event_id` has 1 empty"):
        cl.frame.validate(frame.with_columns(event_id=pl.Series(["e1", ""])))
    # recognised by name, they follow the ten columns, before other extra columns
    odd = frame.with_columns(kafka_offset=pl.lit(1, pl.Int64), sequence=pl.lit(3, pl.Int64))
    odd = odd.select("sequence", *frame.columns, "kafka_offset")
    assert cl.frame.validate(odd).columns == [*cl.SCHEMA, "sequence", "kafka_offset"]


# ----------------------------------------------------------------- a sequence, an event id


def test_a_sequence_replays_both_events_sharing_a_minute(no_conflict_warning):
    frame = created_and_paid().with_columns(sequence=pl.Series([1, 2], dtype=pl.Int64))
    result = cl.state_at(frame, names, types=orders)
    assert result.states == {"o1": ("Created", "Paid")}
    assert result.counts["duplicate"] == result.counts["conflicting"] == 0
    assert result.counts["applied"] == 2


def test_a_sequence_breaks_ties_in_causal_order(no_conflict_warning):
    # same event time; stream "a" sorts before "b", but the sequence says "b" came first
    frame = orders.encode(
        [
            ev(Created, 1, minute=-1),
            ev(Shipped, "ups", minute=0, stream="a"),
            ev(Paid, 1, minute=0, stream="b"),
        ]
    ).with_columns(sequence=pl.Series([1, 3, 2], dtype=pl.Int64))
    assert cl.state_at(frame, names, types=orders).states == {"o1": ("Created", "Paid", "Shipped")}
    assert cl.history(frame, "o1")["name"].to_list() == ["created", "paid", "shipped"]
    without = cl.state_at(frame.drop("sequence"), names, types=orders)
    assert without.states == {"o1": ("Created", "Shipped", "Paid")}  # stream order


def test_a_sequence_is_the_identity_whatever_the_event_time(no_conflict_warning):
    # one event (sequence 2) delivered twice, restated with a later event time
    frame = orders.encode(
        [ev(Created, 1), ev(Paid, 1, minute=3, known=4), ev(Paid, 1, minute=5, known=6)]
    ).with_columns(sequence=pl.Series([1, 2, 2], dtype=pl.Int64))
    result = cl.state_at(frame, names, types=orders)
    assert result.states == {"o1": ("Created", "Paid")}
    assert result.counts["duplicate"] == 1
    assert result.frame["last_event_timestamp"].to_list() == [at(5)]
    first = cl.state_at(frame, names, types=orders, duplicates="first")
    assert first.frame["last_event_timestamp"].to_list() == [at(3)]
    kept = cl.history(frame, "o1")
    assert kept.select("name", "status").rows() == [
        ("created", "applied"),
        ("paid", "duplicate"),
        ("paid", "applied"),
    ]


def test_an_event_id_is_the_identity(no_conflict_warning):
    frame = orders.encode(
        [
            ev(Created, 5),
            ev(Paid, 5, known=1),  # same minute, another event
            ev(Paid, 5, minute=0.5, known=9),  # e2 again, restated
        ]
    ).with_columns(event_id=pl.Series(["e1", "e2", "e2"]))
    result = cl.state_at(frame, names, types=orders)
    assert result.states == {"o1": ("Created", "Paid")}
    assert result.counts["duplicate"] == 1
    assert resolve(frame).height == 2
    assert cl.describe(frame).events == 2


# ------------------------------------------------------------------ conflicting deliveries


def test_without_a_sequence_they_conflict_counted_and_warned():
    frame = created_and_paid()
    with pytest.warns(ConflictingDeliveries) as caught:
        result = cl.state_at(frame, names, types=orders)
    caught = [w for w in caught if issubclass(w.category, ConflictingDeliveries)]
    assert len(caught) == 1  # one warning per call
    text = str(caught[0].message)
    assert "1 identity" in text and "'o1'" in text
    assert "created" in text and "paid" in text and '{"amount":5}' in text
    assert "won" in text
    assert "cl.Mapping(sequence=..., event_id=...)" in text
    assert issubclass(ConflictingDeliveries, UserWarning)
    # the last processed (paid) won, so the order was never created: said, not silent
    assert result.counts["conflicting"] == 1
    assert result.counts["duplicate"] == 0
    c = result.counts
    assert c["read"] == sum(c[k] for k in STATUSES)  # history's statuses: the outcomes
    assert "1 conflicting" in result.summary()


def test_history_marks_the_conflicting_row():
    with pytest.warns(ConflictingDeliveries):
        rows = cl.history(created_and_paid(), "o1").select("name", "status").rows()
    assert rows == [("created", "conflicting"), ("paid", "skipped")]


def test_state_of_and_latest_warn_too():
    frame = created_and_paid()
    with pytest.warns(ConflictingDeliveries):
        assert cl.state_of(frame, names, types=orders, aggregate_id="o1") is None
    with pytest.warns(ConflictingDeliveries):
        assert cl.latest(frame)["last_event"].to_list() == ["paid"]


def test_resolve_and_describe_count_and_warn():
    frame = created_and_paid()
    with pytest.warns(ConflictingDeliveries, match="1 identity"):
        assert resolve(frame)["name"].to_list() == ["paid"]
    with pytest.warns(ConflictingDeliveries):
        found = cl.describe(frame)
    assert found.conflicting == 1
    assert "1 identity with conflicting deliveries" in str(found)


def test_a_source_that_resolves_warns():
    from concursus_lab.sources.memory import MemorySource

    source = MemorySource(created_and_paid())
    with pytest.warns(ConflictingDeliveries):
        assert source.events()["name"].to_list() == ["paid"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConflictingDeliveries)
        assert source.events(duplicates="keep").height == 2  # nothing merged


def test_identical_repeats_are_duplicates_not_conflicts(no_conflict_warning):
    messy = cl.sample.fixture("messy")
    from concursus_lab.sample import parcel_state, parcel_types

    result = cl.state_at(messy, parcel_state, types=parcel_types)
    assert result.counts["duplicate"] == 2
    assert result.counts["conflicting"] == 0
    assert cl.describe(messy).conflicting == 0


def test_keep_merges_nothing_so_nothing_conflicts(no_conflict_warning):
    result = cl.state_at(created_and_paid(), names, types=orders, duplicates="keep")
    assert result.counts["conflicting"] == 0
    assert result.states == {"o1": ("Created", "Paid")}


def test_a_conflict_on_an_event_id_is_one_too():
    frame = orders.encode([ev(Created, 5), ev(Created, 6, known=1)]).with_columns(
        event_id=pl.Series(["e1", "e1"])
    )
    with pytest.warns(ConflictingDeliveries, match="event_id 'e1'") as caught:
        result = cl.state_at(frame, names, types=orders)
    assert result.counts["conflicting"] == 1
    # the data names the identity: the advice is not "name a sequence or an event id"
    text = str(caught[0].message)
    assert "The data names these identities" in text
    assert "cl.Mapping(sequence=" not in text


# ------------------------------------------------------------------------ content identity


def test_content_ids_are_a_stable_digest_of_what_the_event_says():
    frame = orders.encode([ev(Created, 5), ev(Paid, 5), ev(Created, 5, known=3), ev(Created, 6)])
    ids = content_ids(frame)
    assert ids.dtype == pl.String and ids.name == "event_id"
    assert all(i.startswith("~") for i in ids)
    assert ids[0] == ids[2]  # the same event delivered twice
    assert len({ids[0], ids[1], ids[3]}) == 3  # a name or a parameter makes another
    # stable across processes (and so across runs and polars' hash seeds)
    code = (
        "import datetime as dt, polars as pl\n"
        "from concursus_lab.frame.identity import content_ids\n"
        "t = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)\n"
        "f = pl.DataFrame({'event_timestamp': [t], 'stream_id': [''], 'name': ['created'],\n"
        "  'version': ['0'], 'parameters': ['{\"amount\":5}']},\n"
        "  schema_overrides={'event_timestamp': pl.Datetime('us', 'UTC')})\n"
        "print(content_ids(f)[0])\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == ids[0]
    assert other == PINNED


#: content_ids of (2026-03-02 09:00 UTC, "", "created", "0", '{"amount":5}'): pinned so a
#: change of the digest (which would re-identify every stored event) is seen.
PINNED = "~afcea3716c16bcd4ade4e344d50062d1"


def test_content_identity_replays_both_and_dedupes_true_repeats(no_conflict_warning):
    frame = orders.encode([ev(Created, 5, known=1), ev(Paid, 5, known=2), ev(Paid, 5, known=3)])
    frame = frame.with_columns(content_ids(frame))
    result = cl.state_at(frame, names, types=orders)
    assert result.states == {"o1": ("Created", "Paid")}
    assert result.counts["duplicate"] == 1 and result.counts["conflicting"] == 0


# ---------------------------------------------------------- one tie rule (issue 28, item 6)


def offsets_out_of_order() -> pl.DataFrame:
    """Two deliveries of one identity processed at the same instant, in a frame whose rows
    are not in offset order: offset 7 (amount 2) comes first, offset 3 (amount 1) second."""
    frame = orders.encode([ev(Created, 2, known=1), ev(Created, 1, known=1)])
    return frame.with_columns(
        kafka_partition=pl.Series([0, 0], dtype=pl.Int32),
        kafka_offset=pl.Series([7, 3], dtype=pl.Int64),
    )


def test_offsets_break_ties_before_row_order():
    frame = offsets_out_of_order()
    with pytest.warns(ConflictingDeliveries):
        assert resolve(frame)["kafka_offset"].to_list() == [7]  # the later offset: last
    with pytest.warns(ConflictingDeliveries):
        assert resolve(frame, "first")["kafka_offset"].to_list() == [3]
    with pytest.warns(ConflictingDeliveries):
        mask = winners(frame, "last")
    assert mask.tolist() == [True, False]
    amount = {"amount": 2}

    def reducer(state, event):
        return {"amount": event.amount}

    with pytest.warns(ConflictingDeliveries):
        assert cl.state_at(frame, reducer, types=orders).states == {"o1": amount}
    with pytest.warns(ConflictingDeliveries):
        marks = cl.history(frame, "o1").select("kafka_offset", "status").rows()
    assert sorted(marks) == [(3, "conflicting"), (7, "applied")]


def test_lateness_takes_arrival_ties_in_offset_order():
    # processed at one instant; by offset the 09:00 event came first, then the 09:05 one:
    # nothing arrived out of order (by row order, it would seem so)
    frame = orders.encode(
        [ev(Paid, 1, minute=5, known=10), ev(Created, 1, minute=0, known=10)]
    ).with_columns(
        kafka_partition=pl.Series([0, 0], dtype=pl.Int32),
        kafka_offset=pl.Series([5, 2], dtype=pl.Int64),
    )
    assert cl.lateness(frame)["out_of_order"].to_list() == [0]
    assert cl.lateness(frame.reverse())["out_of_order"].to_list() == [0]


def test_lateness_counts_repeats_by_the_frames_identity():
    frame = orders.encode(
        [ev(Created, 1), ev(Paid, 1, minute=3, known=4), ev(Paid, 1, minute=5, known=6)]
    ).with_columns(sequence=pl.Series([1, 2, 2], dtype=pl.Int64))
    assert cl.lateness(frame)["duplicates"].to_list() == [1]


def test_one_warning_per_call_pointing_at_the_caller():
    frame = created_and_paid()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = cl.trace(frame, names, types=orders, aggregate_id="o1")  # replay + history
        cl.restatements(frame, names, types=orders, known_at=(at(1), at(3)))
        cl.describe(frame)  # resolves, and profiles lateness
    found = [w for w in caught if issubclass(w.category, ConflictingDeliveries)]
    assert len(found) == 3
    assert {w.filename for w in found} == {__file__}
    assert [s.status for s in steps] == ["conflicting", "skipped"]


# ------------------------------------------------------------------- the other consumers


def test_a_keyed_fold_replays_a_sequence_like_state_at(no_conflict_warning):
    frame = orders.encode(
        [
            ev(Created, 1, minute=-1),
            ev(Shipped, "ups", minute=0, stream="a"),
            ev(Paid, 1, minute=0, stream="b"),
        ]
    ).with_columns(sequence=pl.Series([1, 3, 2], dtype=pl.Int64))
    view = cl.project(frame, cl.fold(names, types=orders))
    assert view.select("aggregate_id", "state").rows() == [("o1", ["Created", "Paid", "Shipped"])]


def test_a_fold_counts_a_conflict_as_state_at_does():
    with pytest.warns(ConflictingDeliveries):
        view = cl.project(created_and_paid(), cl.fold(names, types=orders))
    assert view.height == 0  # paid won, so the order was never created: said, not silent


def test_chaos_redelivers_events_of_the_frames_identity(no_conflict_warning):
    frame = created_and_paid().with_columns(event_id=pl.Series(["e1", "e2"]))
    count = cl.projection(lambda f: f.group_by("name").len().sort("name"), key="name")
    found = cl.chaos(frame, count, runs=3, duplicate_rate=0.5, seed=1)
    assert found.stable


def test_events_compare_with_their_identity_columns():
    from concursus_lab.testing import assert_events_equal

    frame = created_and_paid().with_columns(sequence=pl.Series([1, 2], dtype=pl.Int64))
    assert_events_equal(frame, frame.reverse())
    with pytest.raises(AssertionError, match="sequence"):
        assert_events_equal(frame, frame.with_columns(sequence=pl.Series([2, 1])))


# ------------------------------------------------------------------------ the local store


def test_the_local_store_warns_when_an_append_resolves_a_conflict(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    store.append(created_and_paid().head(1))
    with pytest.warns(ConflictingDeliveries, match="paid") as caught:
        store.append(created_and_paid().tail(1))
    assert len(caught) == 1 and caught[0].filename == __file__
    assert _no_warning(lambda: store.events())["name"].to_list() == ["paid"]
    with pytest.warns(ConflictingDeliveries, match="processed first"):
        assert store.events(duplicates="first")["name"].to_list() == ["created"]
    assert _no_warning(lambda: store.events(duplicates="keep")).height == 2


def test_the_local_store_keeps_the_identity_columns(tmp_path, no_conflict_warning):
    frame = created_and_paid().with_columns(sequence=pl.Series([1, 2], dtype=pl.Int64))
    store = cl.open(tmp_path / "s", create=True)
    store.append(frame.head(1))
    store.append(frame.tail(1))
    read = store.events()
    assert read.columns == [*cl.SCHEMA, "sequence"]
    assert cl.state_at(read, names, types=orders).states == {"o1": ("Created", "Paid")}
    again = cl.open(tmp_path / "s")  # from the manifest alone
    assert again.events(duplicates="first")["sequence"].sort().to_list() == [1, 2]
    with pytest.raises(SchemaError, match=r"carry the identity column\(s\) \['sequence'\]"):
        store.append(created_and_paid())


def test_a_store_that_cannot_keep_the_identity_columns_refuses_them():
    from concursus_lab.frame.schema import for_writing
    from concursus_lab.sources.memory import MemorySource

    frame = created_and_paid().with_columns(event_id=pl.Series(["e1", "e2"]))
    with pytest.raises(SchemaError, match=r"Concursus JSON has no place for.*event_id"):
        for_writing(frame, milliseconds="Concursus JSON")
    kept = MemorySource(frame).events()
    assert kept["event_id"].to_list() == ["e1", "e2"]


def _no_warning(read):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConflictingDeliveries)
        return read()
