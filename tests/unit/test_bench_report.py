"""The benchmark report's record is its .json: lines edited into the Markdown by hand are never
dropped silently (a rewrite refuses, naming them), another run's rows join with --merge, and a
row's own ``verdict`` is shown for goals the harness cannot judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main


def _row(name: str, scale: int, seconds: float, **more) -> dict:
    return {
        "name": name,
        "events": scale,
        "seconds": seconds,
        "events_per_s": round(scale / seconds),
        "scale": scale,
        **more,
    }


@pytest.fixture
def report(tmp_path: Path) -> Path:
    out = tmp_path / "benchmarks.md"
    record = {
        "bench_local": [_row("local load", 1000, 0.5)],
        "bench_spark": [_row("spark read", 1000, 2.0, goal=">= 150k/s per core")],
    }
    out.with_suffix(".json").write_text(json.dumps(record))
    assert main(["--report-only", "--out", str(out)]) == 0
    return out


def test_a_line_edited_by_hand_is_named_and_kept(report: Path, capsys):
    edited = report.read_text().replace(
        "| local load | 1,000 | 0.5 |", "| local load | 1,000 | 0.4 |"
    )
    report.write_text(edited)
    assert main(["--report-only", "--out", str(report)]) == 2
    said = capsys.readouterr().err
    assert (
        "holds 1 line(s) that its .json does not" in said and "| local load | 1,000 | 0.4 |" in said
    )
    assert report.read_text() == edited  # nothing overwritten
    assert main(["--report-only", "--out", str(report), "--discard-edits"]) == 0
    assert "| local load | 1,000 | 0.5 |" in report.read_text()


def test_another_runs_rows_join_the_report_and_a_rows_verdict_is_shown(report: Path, tmp_path):
    run = tmp_path / "run.json"
    verdict = "**not met**: 33k events per CPU s"
    run.write_text(
        json.dumps(
            {
                "bench_spark": [
                    _row("spark read", 1000, 1.0, goal=">= 150k/s per core", verdict=verdict)
                ]
            }
        )
    )
    assert main(["--merge", str(run), "--out", str(report)]) == 0
    text = report.read_text()
    assert f"| spark read | 1,000 | 1 | 1,000 |  | >= 150k/s per core | {verdict} |" in text
    assert "| spark read | 1,000 | 2 |" not in text  # replaced, same module and scale
    assert "| local load | 1,000 | 0.5 |" in text  # the other module kept
    record = json.loads(report.with_suffix(".json").read_text())
    assert [r["seconds"] for r in record["bench_spark"]] == [1.0]


def test_a_row_changed_in_the_record_is_not_taken_for_an_edit(report: Path):
    record = report.with_suffix(".json")
    rows = json.loads(record.read_text())
    rows["bench_local"][0]["note"] = "measured again"
    record.write_text(json.dumps(rows))
    assert main(["--report-only", "--out", str(report)]) == 0
    assert "| measured again |" in report.read_text()
