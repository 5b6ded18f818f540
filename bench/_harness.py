"""Timing and memory helpers shared by every benchmark module.

A benchmark module ``bench/bench_<topic>.py`` defines ``run(scale: int, quick: bool) ->
list[dict]`` returning rows made with :func:`row`, and may set ``MAX_SCALE`` (the largest
number of events it is run at). ``python -m bench`` runs them all and writes the report.
"""

from __future__ import annotations

import gc
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass
class Measurement:
    seconds: float  # best of the repeats
    peak_rss_mb: float  # highest resident memory above the level before the call
    result: Any


class _PeakSampler:
    """Samples this process's resident memory every few milliseconds."""

    def __init__(self, interval: float = 0.005):
        self.process = psutil.Process(os.getpid())
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> _PeakSampler:
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def measure(fn: Callable[[], Any], *, repeat: int = 3) -> Measurement:
    """Run ``fn`` ``repeat`` times; the best time and the peak memory of the first run."""
    best = float("inf")
    peak = 0.0
    result = None
    for i in range(repeat):
        result = None
        gc.collect()
        with _PeakSampler() as sampler:
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
        best = min(best, elapsed)
        if i == 0:
            peak = (sampler.peak - sampler.baseline) / 2**20
    return Measurement(best, peak, result)


def row(
    name: str,
    events: int,
    ours: Measurement,
    baseline_name: str | None = None,
    baseline: Measurement | None = None,
    *,
    goal: str = "",
    note: str = "",
) -> dict:
    """One line of the report: our events/s, the baseline's, and their ratio."""
    ours_rate = events / ours.seconds if ours.seconds else float("inf")
    base_rate = None
    ratio = None
    if baseline is not None:
        base_rate = events / baseline.seconds if baseline.seconds else float("inf")
        ratio = ours_rate / base_rate if base_rate else None
    return {
        "name": name,
        "events": events,
        "seconds": round(ours.seconds, 4),
        "events_per_s": round(ours_rate),
        "baseline": baseline_name,
        "baseline_seconds": None if baseline is None else round(baseline.seconds, 4),
        "baseline_events_per_s": None if base_rate is None else round(base_rate),
        "ratio": None if ratio is None else round(ratio, 2),
        "peak_rss_mb": round(ours.peak_rss_mb, 1),
        "goal": goal,
        "note": note,
    }


def machine() -> str:
    """A one-line description of this machine."""
    memory = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
