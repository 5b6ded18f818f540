"""cl.frame.schemas: the shapes a history's events had per version, and the three flags."""

from __future__ import annotations

import datetime as dt

import orjson
import polars as pl

import concursus_lab as cl
from tests.versions import histories

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _events(rows: list[tuple[str, str, object, int]]) -> pl.DataFrame:
    """Events of one parcel: (name, version, parameters, minutes after T0) each."""
    time = pl.Datetime("us", "UTC")
    at = [T0 + dt.timedelta(minutes=m) for *_, m in rows]
    return cl.frame.validate(
        pl.DataFrame(
            {
                "aggregate_type": ["parcel"] * len(rows),
                "aggregate_id": [f"p{i}" for i in range(len(rows))],
                "event_timestamp": pl.Series(at, dtype=time),
                "stream_id": [""] * len(rows),
                "processing_id": pl.Series([None] * len(rows), dtype=pl.String),
                "processing_timestamp": pl.Series(at, dtype=time),
                "name": [r[0] for r in rows],
                "version": [r[1] for r in rows],
                "parameters": [
                    p if isinstance(p, str) else orjson.dumps(p).decode() for _, _, p, _ in rows
                ],
                "characteristics": pl.Series([0] * len(rows), dtype=pl.Int32),
            }
        ),
        check_parameters=False,
    )


def test_the_three_versions_of_a_history_are_listed_with_counts_and_times():
    stored, _ = histories(parcels=60, seed=7)
    found = cl.frame.schemas(stored)
    received = found.frame.filter(name="receivedAtDepot")
    assert received["version"].to_list() == ["0", "1", "2"]
    assert received["shape"].to_list() == [
        "depot: string",
        "depotId: string",
        "depotId: string, priority: int",
    ]
    assert received["keys"].to_list()[2] == ["depotId", "priority"]
    assert received["kinds"].to_list()[2] == ["string", "int"]
    assert found.frame["events"].sum() == stored.height == found.events
    counted = stored.group_by("name", "version").len().sort("name", "version")
    per_version = found.frame.group_by("name", "version").agg(pl.col("events").sum())
    assert per_version.sort("name", "version").rows() == counted.rows()
    v1 = stored.filter(name="receivedAtDepot", version="1")
    row = received.row(1, named=True)
    assert row["first_processed"] == v1["processing_timestamp"].min()
    assert row["last_processed"] == v1["processing_timestamp"].max()
    assert row["first_event"] == v1["event_timestamp"].min()
    assert row["last_event"] == v1["event_timestamp"].max()


def test_a_version_processed_after_a_newer_one_is_flagged():
    found = cl.frame.schemas(
        _events(
            [
                ("made", "1", {"w": 1}, 0),
                ("made", "2", {"w": 1, "x": 2}, 10),
                ("made", "1", {"w": 3}, 20),
                ("made", "1", {"w": 4}, 30),
            ]
        )
    )
    assert found.flags.select("name", "version", "flag").rows() == [
        ("made", "1", "version comes back")
    ]
    detail = found.flags["detail"][0]
    assert "comes back after v2: 2 events processed after its first (2026-03-01 00:10:00)" in detail
    assert "the last at 2026-03-01 00:30:00" in detail


def test_a_key_whose_kind_changes_and_a_new_key_set_in_one_version_are_flagged():
    found = cl.frame.schemas(
        _events(
            [
                ("made", "1", {"w": 1}, 0),
                ("made", "1", {"w": "heavy"}, 1),
                ("made", "1", {"w": 2}, 2),
                ("made", "1", {"w": None}, 3),  # a null is no kind change
                ("made", "1", {"w": 3, "colour": "red"}, 4),
            ]
        )
    )
    flags = dict(found.flags.select("flag", "detail").iter_rows())
    assert set(flags) == {"kind changes", "new key set"}
    assert flags["kind changes"] == (
        "key 'w' changes kind within the version: int in 3 events, string in 1 events"
    )
    assert flags["new key set"] == (
        "2 key sets without a new version: {w} from 2026-03-01 00:00:00 (4 events), "
        "then {colour, w} from 2026-03-01 00:04:00 (1 events)"
    )
    assert found.frame.height == 4  # int, string, null and the two-key shape
    assert "! parcel made v1: key 'w' changes kind" in found.summary()


def test_parameters_that_are_not_an_object_have_their_own_shape():
    found = cl.frame.schemas(
        _events([("made", "0", "[1, 2]", 0), ("made", "0", "not json", 1), ("made", "0", {}, 2)])
    )
    assert sorted(found.frame["shape"].to_list()) == ["()", "<not a JSON object>"]
    assert found.frame.filter(shape="<not a JSON object>")["events"].item() == 2


def test_an_empty_history_has_the_same_columns_and_types():
    stored, _ = histories(parcels=5, seed=1)
    full, empty = cl.frame.schemas(stored), cl.frame.schemas(stored.head(0))
    assert empty.frame.schema == full.frame.schema and empty.frame.height == 0
    assert empty.flags.schema == full.flags.schema and empty.flags.height == 0
    assert empty.summary() == (
        "Schemas of 0 events: 0 aggregate types, 0 event names, 0 versions, 0 shapes, 0 flags"
    )


def test_the_summary_is_the_same_whatever_the_row_order_and_says_what_it_left_out():
    stored, _ = histories(parcels=40, seed=3)
    assert repr(cl.frame.schemas(stored)) == repr(cl.frame.schemas(stored.reverse()))
    many = _events([("made", str(v), {"w": v}, v) for v in range(45)])
    text = cl.frame.schemas(many).summary()
    assert text.splitlines()[-1] == "  ... and 5 more shapes (see .frame)"
    assert "made  v0   w: int" in text and " v10  " in text.splitlines()[12]
