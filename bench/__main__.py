"""Run every benchmark and write the report: ``python -m bench [--quick] [--out FILE]``.

Each ``bench/bench_*.py`` module is run once per scale in its own process (so one run's
memory does not colour the next) and returns rows of events/s, its baseline's events/s
measured in the same run, their ratio and peak memory. ``--quick`` runs the smallest scale
only: a smoke test that the benchmarks still run, never a judgement of speed.

The report's ``.json`` beside it is the record; the Markdown is written from it. A run of
record made elsewhere (``--out /tmp/run.md``) joins the report with ``--merge /tmp/run.json``
(its modules' rows at its scales replace the report's). A row may carry ``verdict`` (a goal
judged from figures the harness cannot check, e.g. events per CPU second) and any ``note``.
Lines edited into the Markdown by hand are not in the record: a run, ``--merge`` and
``--report-only`` refuse to start while the report holds such lines, naming them, unless
``--discard-edits`` is passed (put them in the ``.json`` instead).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

from bench._harness import machine

SCALES = (10_000, 100_000, 1_000_000, 10_000_000)

#: The measurements drawn in the scaling chart (name prefixes): one or two per topic.
HEADLINES = (
    "local store load (.events())",
    "cassandra load",
    "kafka load (.events(",
    "lateness profile (percentiles",
    "watermark replay, 8 partitions, idle",
    "state_at (simple reducer)",
    "latest (vectorised)",
    "project: vectorised view",
    "project: fold keyed",
    "timeline summary: busiest",
)
ROOT = Path(__file__).resolve().parents[1]


def _modules(only: list[str] | None) -> list[str]:
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(ROOT / "bench")]) if m.name.startswith("bench_")
    )
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def _run_one(module: str, scale: int, quick: bool) -> list[dict]:
    code = (
        f"import json, sys; from bench import {module} as b; "
        f"rows = b.run({scale}, {quick}); sys.stdout.write('\\n@@ROWS@@' + json.dumps(rows))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or "@@ROWS@@" not in proc.stdout:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{module} at {scale:,} events failed:\n{tail}")
    return json.loads(proc.stdout.rsplit("@@ROWS@@", 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smallest scale only (smoke test)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--only", nargs="*", help="run only modules whose name contains these")
    parser.add_argument("--scales", nargs="*", type=int, help="override the scales")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from its .json, run nothing"
    )
    parser.add_argument(
        "--merge", metavar="RUN.json", help="add another run's rows to the report, run nothing"
    )
    parser.add_argument(
        "--discard-edits", action="store_true", help="overwrite lines edited into the report"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if not args.quick and not args.discard_edits and (edited := _hand_edits(out)):
        shown = "\n".join(f"  {line[:160]}" for line in edited[:5])
        print(
            f"bench: {out} holds {len(edited)} line(s) that its .json does not, e.g.\n{shown}\n"
            "Put them in the .json (a row's `note` or `verdict`) and run --report-only, or pass "
            "--discard-edits to lose them.",
            file=sys.stderr,
        )
        return 2
    if args.report_only or args.merge:
        results = json.loads(out.with_suffix(".json").read_text())
        if args.merge:
            results = _merged(results, json.loads(Path(args.merge).read_text()))
            out.with_suffix(".json").write_text(json.dumps(results, indent=1))
        out.write_text(_report(results, quick=False, seconds=None))
        _chart(results, out.with_name("benchmarks-scaling.png"))
        print(f"bench: rewrote {out}")
        return 0
    scales = args.scales or ((SCALES[0],) if args.quick else SCALES)
    results: dict[str, list[dict]] = {}
    failures = []
    started = time.perf_counter()
    for module in _modules(args.only):
        limit = getattr(importlib.import_module(f"bench.{module}"), "MAX_SCALE", SCALES[-1])
        for scale in scales:
            if scale > limit:
                continue
            print(f"bench: {module} at {scale:,} events ...", flush=True)
            t0 = time.perf_counter()
            try:
                rows = _run_one(module, scale, args.quick)
            except RuntimeError as exc:
                failures.append(str(exc))
                print(f"bench: FAILED {exc}", file=sys.stderr, flush=True)
                continue
            for r in rows:
                r["scale"] = scale
            results.setdefault(module, []).extend(rows)
            print(f"bench:   done in {time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = out.with_suffix(".json")
    if args.only and not args.quick and previous.exists():
        results = _merged(json.loads(previous.read_text()), results)
    out.write_text(_report(results, quick=args.quick, seconds=time.perf_counter() - started))
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    if not args.quick:
        _chart(results, out.with_name("benchmarks-scaling.png"))
    print(f"bench: wrote {out}")
    if failures:
        print(f"bench: {len(failures)} benchmark(s) failed", file=sys.stderr)
        return 1
    if not results:
        print("bench: no benchmark ran", file=sys.stderr)
        return 1
    return 0


def _hand_edits(out: Path) -> list[str]:
    """The lines of the report at ``out`` that the report its ``.json`` writes lacks (edits
    by hand), besides the header's date and machine; none when the report is as written (its
    last line's hash holds), so that a row changed in the .json is not taken for an edit."""
    record = out.with_suffix(".json")
    if not out.exists() or not record.exists() or _untouched(out.read_text()):
        return []
    written = set(_report(json.loads(record.read_text()), quick=False, seconds=None).splitlines())
    header = ("Written by ", "Machine: ")
    return [
        line
        for line in out.read_text().splitlines()
        if line not in written and not line.startswith(header)
    ]


def _merged(previous: dict[str, list[dict]], ran: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """A partial run's rows in place of the earlier ones of the same module and scale; every
    other module and scale keeps its figures."""
    merged = dict(previous)
    for module, rows in ran.items():
        scales = {r["scale"] for r in rows}
        kept = [r for r in previous.get(module, []) if r["scale"] not in scales]
        merged[module] = sorted(kept + rows, key=lambda r: r["scale"])  # stable within a scale
    return dict(sorted(merged.items()))


def _fmt(value, kind: str = "") -> str:
    if value is None or value == "":
        return ""
    if kind == "rate":
        return f"{value:,.0f}"
    if kind == "ratio":
        return f"{value:.2f}x"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _report(results: dict[str, list[dict]], *, quick: bool, seconds: float | None) -> str:
    took = f", in {seconds:.0f} s" if seconds is not None else ""
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m bench{' --quick' if quick else ''}` on "
        f"{dt.date.today().isoformat()}{took} (a run with `--only` replaces only the sections it "
        "ran), from the record beside it (`.json`): a figure or verdict added by hand belongs "
        "there, or the next run refuses to start (`python -m bench --help`).",
        f"Machine: {machine()}.",
        "",
        "Every ratio compares our events/s with a baseline measured in the same run, on the "
        "same data, on this machine. Times are the best of the repeats; peak memory is the "
        "highest resident memory above the level before the call (first repeat).",
        "",
    ]
    if quick:
        lines += ["**Quick mode: a smoke test at the smallest scale; do not read speed here.**", ""]
    else:
        lines += _goals(results)
    for module, rows in results.items():
        lines += [f"## {module.removeprefix('bench_')}", ""]
        lines.append(
            "| measurement | events | s | events/s | baseline | baseline events/s | ratio "
            "| goal | peak MB | note |"
        )
        lines.append("|---|---:|---:|---:|---|---:|---:|---|---:|---|")
        for r in rows:
            lines.append(
                "| "
                + " | ".join(
                    [
                        r.get("name", ""),
                        _fmt(r.get("events")),
                        _fmt(r.get("seconds")),
                        _fmt(r.get("events_per_s"), "rate"),
                        r.get("baseline") or "",
                        _fmt(r.get("baseline_events_per_s"), "rate"),
                        _fmt(r.get("ratio"), "ratio"),
                        r.get("goal", ""),
                        _fmt(r.get("peak_rss_mb")),
                        r.get("note", ""),
                    ]
                )
                + " |"
            )
        lines.append("")
    if not quick:
        lines += [
            "## Cost per event as the history grows",
            "",
            "![microseconds per event against events, log-log](benchmarks-scaling.png)",
            "",
        ]
    return _sealed("\n".join(lines))


_SEAL = "<!-- written by python -m bench; sha1 of the lines above: {} -->"


def _sealed(text: str) -> str:
    """``text`` with a last line holding its hash: a report whose lines still match it was
    not edited by hand, whatever its .json holds now."""
    return f"{text}\n{_SEAL.format(hashlib.sha1(text.encode()).hexdigest())}\n"


def _untouched(text: str) -> bool:
    body, _, last = text.rstrip("\n").rpartition("\n")
    return last == _SEAL.format(hashlib.sha1(body.encode()).hexdigest())


def _verdict(goal: str, r: dict) -> str:
    """``met``, ``not met`` or ``see figures`` for goals written like ``>= 2x``,
    ``>= 500k events/s``, ``< 5 s``, ``peak <= 2.5x frame`` (clauses joined by ``and``)."""
    import re

    verdicts = []
    for clause in goal.split(" and "):
        if m := re.match(r">=\s*([\d.]+)x", clause.strip()):
            verdicts.append(r.get("ratio") is not None and r["ratio"] >= float(m[1]))
        elif m := re.match(r">=\s*([\d.]+)k events/s", clause.strip()):
            verdicts.append(r.get("events_per_s", 0) >= 1000 * float(m[1]))
        elif m := re.match(r"<\s*([\d.]+)\s*s\b", clause.strip()):
            verdicts.append(r.get("seconds") is not None and r["seconds"] < float(m[1]))
        elif m := re.match(r"peak\s*<=\s*([\d.]+)x frame", clause.strip()):
            verdicts.append(r.get("peak_over_frame", float("inf")) <= float(m[1]))
        else:
            return "see figures"
    return "met" if all(verdicts) else "**not met**"


def _goals(results: dict[str, list[dict]]) -> list[str]:
    """The goals the issues set, judged on the largest scale each was measured at."""
    largest: dict[str, dict] = {}
    for rows in results.values():
        for r in rows:
            known = largest.get(r["name"])
            newer = known is None or r["scale"] >= known["scale"]
            if r.get("goal") and r.get("events") and newer:
                largest[r["name"]] = r
    if not largest:
        return []
    lines = [
        "## Goals",
        "",
        "| measurement | events | s | events/s | ratio | goal | verdict |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in largest.values():
        lines.append(
            f"| {r['name']} | {_fmt(r['events'])} | {_fmt(r.get('seconds'))} | "
            f"{_fmt(r.get('events_per_s'), 'rate')} | {_fmt(r.get('ratio'), 'ratio')} | "
            f"{r['goal']} | {r.get('verdict') or _verdict(r['goal'], r)} |"
        )
    return [*lines, ""]


def _chart(results: dict[str, list[dict]], path: Path) -> None:
    import altair as alt
    import polars as pl

    points = [
        {
            "measurement": r["name"],
            "events": r["events"],
            "us_per_event": 1e6 * r["seconds"] / r["events"],
        }
        for rows in results.values()
        for r in rows
        if r.get("seconds") and r.get("events") and r["name"].startswith(HEADLINES)
    ]
    if not points:
        return
    chart = (
        alt.Chart(pl.DataFrame(points))
        .mark_line(point=True)
        .encode(
            x=alt.X("events:Q", scale=alt.Scale(type="log", nice=False), title="events"),
            y=alt.Y("us_per_event:Q", scale=alt.Scale(type="log"), title="µs per event"),
            color=alt.Color("measurement:N", legend=alt.Legend(orient="bottom", columns=2)),
        )
        .properties(width=640, height=360, title="Cost per event stays flat as histories grow")
    )
    chart.save(str(path), format="png", scale_factor=1.5)


if __name__ == "__main__":
    sys.exit(main())
