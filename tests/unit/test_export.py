"""cl.export to files: Parquet and CSV, written whole; what a file cannot hold is refused."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError


@pytest.fixture
def view() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "truck": ["LEW-1", "CRO-4"],
            "day": [dt.date(2026, 3, 2)] * 2,
            "rate": [0.75, None],
            "last_event_timestamp": [dt.datetime(2026, 3, 2, 11, tzinfo=dt.UTC)] * 2,
        }
    )


def test_parquet_round_trips(view, tmp_path):
    (tmp_path / "views").mkdir()
    path = cl.export(view, tmp_path / "views" / "rate.parquet")
    assert path == tmp_path / "views" / "rate.parquet"
    assert pl.read_parquet(path).equals(view)
    assert [p.name for p in path.parent.iterdir()] == ["rate.parquet"]  # no partial left


def test_csv_is_plain_text_and_replaces_the_file(view, tmp_path):
    path = tmp_path / "rate.csv"
    path.write_text("old")
    cl.export(view, str(path))
    assert path.read_text().splitlines() == [
        "truck,day,rate,last_event_timestamp",
        "LEW-1,2026-03-02,0.75,2026-03-02T11:00:00.000000+0000",
        "CRO-4,2026-03-02,,2026-03-02T11:00:00.000000+0000",
    ]


def test_what_a_file_cannot_hold_is_refused(view, tmp_path):
    nested = view.with_columns(pl.lit(["p1"]).alias("parcels"))
    with pytest.raises(SchemaError, match=r"CSV cannot hold the nested column\(s\) 'parcels'"):
        cl.export(nested, tmp_path / "rate.csv")
    assert not (tmp_path / "rate.csv").exists()
    cl.export(nested, tmp_path / "rate.parquet")  # Parquet can
    with pytest.raises(SchemaError, match=r"must end in \.parquet or \.csv"):
        cl.export(view, tmp_path / "rate.xlsx")
    with pytest.raises(SchemaError, match="are for a cassandra:// target"):
        cl.export(view, tmp_path / "rate.csv", key="truck")
    with pytest.raises(SchemaError, match="needs `table=`"):
        cl.export(view, "cassandra://127.0.0.1:9042/concursus")
    with pytest.raises(SchemaError, match="`view` must be a polars DataFrame"):
        cl.export({"truck": []}, tmp_path / "rate.csv")


def test_a_folder_that_is_not_there_is_refused_never_made(view, tmp_path):
    """A typo in a folder must not quietly make a new tree of folders somewhere."""
    target = tmp_path / "no" / "such" / "dir" / "view.parquet"
    with pytest.raises(SourceError, match=r"folder .*/no/such/dir' does not exist.*mkdir"):
        cl.export(view, target)
    assert not (tmp_path / "no").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(SourceError, match=r"'.*/file' is a file, not a folder"):
        cl.export(view, tmp_path / "file" / "view.csv")
