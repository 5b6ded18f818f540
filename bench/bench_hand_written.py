"""Hand-written parts against the library that would replace them, measured in one run
(docs/hand-written.md is the table these rows fill).

- Duration texts (``common/time.py``'s parser, behind every ``window=``, ``ttl=``, ``every=``)
  against ``pandas.Timedelta``, pandas being a core dependency: on the texts users write,
  speed and which texts each accepts, and with what value.
- Time-UUID texts to processing times against the NumPy pass over the Arrow buffer that
  ``frame/timeuuid.py`` used before it became one polars expression (the replacement).
- The Cassandra fast path (cells handed over as bytes) against its own public path (the
  driver decodes each cell, and :func:`~concursus_lab.sources.cassandra.raw_cells.as_sent`
  turns them back), on the same table: needs Cassandra, as the other Cassandra benchmarks.
- The Hazelcast Java stream (``hazelcast/java_stream.py``) against javaobj-py3, and the local
  store against a Delta table (deltalake, merge on the event identity), when those are
  installed (``pip install javaobj-py3 deltalake``; neither is a dependency).

Each pair is checked to give the same answer. ``python -m bench.bench_hand_written [events]``
prints the rows.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from bench._harness import measure, row
from concursus_lab.common.time import _parse_duration, to_timedelta
from concursus_lab.frame.timeuuid import GREGORIAN_OFFSET, processing_time, time_uuids

#: Texts a user writes for a duration: what the docs and notebooks show, and near misses.
TEXTS = (
    "90s", "2m", "1h30m", "500ms", "2 minutes", "1.5h", "10us", "3µs", "1d", "7 days", "1w",
    "2 weeks", "1 sec", "3 secs", "5 mins", "1h 30m", "10 min", ".5s", "1 hour", "1m30s",
    "5", "", "-5s", "1ns", "1 days 02:00:00", "P1DT2H", "1M", "abc",
)  # fmt: skip
_US = pd.Timedelta(1, "us")


def _pandas(text: str) -> dt.timedelta | None:
    """``text`` through pandas, as the parser's callers would need it (None when refused)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 deprecates 'd', 'w', 'H', 'MS'
            found = pd.Timedelta(text)
    except ValueError:
        return None
    if found is pd.NaT:
        return None
    return dt.timedelta(microseconds=found // _US)


def differences() -> list[str]:
    """The texts on which the two disagree: ``text: ours -> pandas``."""
    out = []
    for text in TEXTS:
        ours, theirs = _parse_duration(text), _pandas(text)
        if ours != theirs:
            out.append(f"{text!r}: {ours} -> {theirs}")
    return out


def _durations(n: int) -> list[dict]:
    same = [t for t in TEXTS if _parse_duration(t) is not None and _parse_duration(t) == _pandas(t)]
    texts = [same[i % len(same)] for i in range(n)]  # texts both read, with the same value
    ours = measure(lambda: [to_timedelta(t, "window") for t in texts])
    theirs = measure(lambda: [_pandas(t) for t in texts])
    if ours.result != theirs.result:
        raise AssertionError("the parsers disagree on texts both read the same")
    found = differences()
    return [
        row(
            "duration texts (common/time.py)",
            n,
            ours,
            "pandas.Timedelta",
            theirs,
            note=f"over the {len(same)} texts both read alike; {len(found)} of {len(TEXTS)} "
            "texts read differently: " + "; ".join(found),
        )
    ]


_DASHES = (8, 13, 18, 23)
_HEX_POSITIONS = np.array([i for i in range(36) if i not in _DASHES])
_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
_HEX_VALUE[list(b"0123456789abcdef")] = np.arange(16)
_HEX_VALUE[list(b"ABCDEF")] = np.arange(10, 16)


def numpy_processing_time(ids: pl.Series) -> pl.Series:
    """What ``frame/timeuuid.py`` did before the polars expression: NumPy over the Arrow
    string buffer, 256k ids at a time (the baseline)."""
    n = ids.len()
    array = ids.cast(pl.String).to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    micros, ok = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    valid = np.diff(offsets) == 36
    if array.null_count:
        valid &= ~np.asarray(array.is_null().to_numpy(zero_copy_only=False))
    rows = np.flatnonzero(valid)
    for chunk in range(0, len(rows), 1 << 18):
        part = rows[chunk : chunk + (1 << 18)]
        chars = data[offsets[part][:, None] + np.arange(36)]
        digits = _HEX_VALUE[chars[:, _HEX_POSITIONS]]
        ok[part] = (
            (digits != 255).all(axis=1)
            & (chars[:, _DASHES] == ord("-")).all(axis=1)
            & (chars[:, 14] == ord("1"))
        )
        raw = ((digits[:, 0::2] << 4) | (digits[:, 1::2] & 0xF)).astype(np.int64)
        low = (raw[:, 0] << 24) | (raw[:, 1] << 16) | (raw[:, 2] << 8) | raw[:, 3]
        mid = (raw[:, 4] << 8) | raw[:, 5]
        high = ((raw[:, 6] << 8) | raw[:, 7]) & 0x0FFF
        micros[part] = (((high << 48) | (mid << 32) | low) - GREGORIAN_OFFSET) // 10_000 * 1000
    out = pl.Series(ids.name, micros).cast(pl.Datetime("us", "UTC"))
    return out.scatter(np.flatnonzero(~ok), None) if not ok.all() else out


def _time_uuids(n: int) -> list[dict]:
    base = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    stamps = pl.datetime_range(
        base, base + dt.timedelta(milliseconds=7 * (n - 1)), dt.timedelta(milliseconds=7),
        eager=True, time_unit="us",
    )  # fmt: skip
    ids = time_uuids(stamps, seed=1)
    ids = ids.scatter(np.arange(0, n, 50), "").scatter(np.arange(1, n, 50), None)  # "" and null
    ours = measure(lambda: processing_time(ids))
    theirs = measure(lambda: numpy_processing_time(ids))
    if not ours.result.equals(theirs.result):
        raise AssertionError("the two time-UUID readings differ")
    return [
        row(
            "time-UUID texts -> processing time (frame/timeuuid.py, a polars expression)",
            n,
            ours,
            "the NumPy pass over the Arrow buffer it replaced",
            theirs,
            note="same times and nulls; 1 in 50 ids empty, 1 in 50 null",
        )
    ]


def _cassandra(n: int) -> list[dict]:
    """Load a fresh keyspace of ``n`` sample events on the fast path, then the public one."""
    import uuid

    import concursus_lab as cl
    from concursus_lab.sources.cassandra import raw_cells

    url = f"cassandra://127.0.0.1:{os.environ.get('CONCURSUS_LAB_CASSANDRA_PORT', '9042')}"
    keyspace = f"cl_bench_hand_{uuid.uuid4().hex[:8]}"

    def load() -> pl.DataFrame:
        with cl.open(f"{url}/{keyspace}") as store:
            return store.events(progress=False)

    try:
        with cl.open(f"{url}/{keyspace}", create=True) as store:
            store.append(cl.sample.parcels(max(1, round(n / 3.25)), seed=11), progress=False)
        load()  # warm up: flushes, caches
        fast = measure(load, repeat=2)
        saved = raw_cells.VERIFIED, raw_cells._HANDLER, raw_cells._WARNED
        raw_cells.VERIFIED, raw_cells._HANDLER, raw_cells._WARNED = frozenset(), None, True
        try:
            public = measure(load, repeat=2)
        finally:
            raw_cells.VERIFIED, raw_cells._HANDLER, raw_cells._WARNED = saved
    finally:  # also when creating it timed out half-way
        from cassandra.cluster import Cluster

        cluster = Cluster([url.split("//")[1].split(":")[0]], port=int(url.rsplit(":", 1)[1]))
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
        finally:
            cluster.shutdown()
    order = list(fast.result.columns[:4])
    if not fast.result.sort(order).equals(public.result.sort(order)):
        raise AssertionError("the fast and the public Cassandra paths read different frames")
    return [
        row(
            "cassandra load, fast path (sources/cassandra/raw_cells.py)",
            fast.result.height,
            fast,
            "the same read on the driver's public path",
            public,
        )
    ]


def _java_stream(n: int) -> list[dict]:
    try:
        import javaobj.v2 as javaobj
    except ImportError:
        return []
    from concursus_lab.sources.hazelcast.java_stream import read_object, write_object
    from concursus_lab.sources.hazelcast.keys import IDENTITY_CLASS, IDENTITY_SUID

    base = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    keys = [
        write_object(
            IDENTITY_CLASS,
            IDENTITY_SUID,
            {
                "aggregateType": "parcel",
                "aggregateId": f"p{i}",
                "eventTimestamp": base + dt.timedelta(milliseconds=i),
                "streamId": "",
            },
        )
        for i in range(n)
    ]
    ours = measure(lambda: [read_object(k) for k in keys])
    theirs = measure(lambda: [javaobj.loads(k) for k in keys])
    first = theirs.result[0]
    fields = {f.name: v for f, v in next(iter(first.field_data.values())).items()}
    if fields["aggregateId"] != ours.result[0].fields["aggregateId"]:
        raise AssertionError("javaobj and the Java stream read different keys")
    return [
        row(
            "Hazelcast keys, Java serialization (hazelcast/java_stream.py)",
            n,
            ours,
            "javaobj-py3 0.6 (v2 parser)",
            theirs,
            note="javaobj gives the Instant as an unparsed java.time.Ser object and has no "
            "writer for its v2 parser; ours reads it as a datetime and writes keys Java's bytes",
        )
    ]


def _local_store(n: int) -> list[dict]:
    try:
        import deltalake
    except ImportError:
        return []
    import shutil
    import tempfile

    import concursus_lab as cl

    events = cl.sample.parcels(max(1, round(n / 3.25)), seed=3)
    first = events.slice(0, events.height * 9 // 10)
    more = pl.concat([events.slice(events.height * 9 // 10), first.sample(n // 100, seed=1)])
    identity = ["aggregate_type", "aggregate_id", "event_timestamp", "stream_id"]
    root = Path(tempfile.mkdtemp())
    try:
        cl.open(root / "ours", create=True).append(first, progress=False)
        deltalake.write_deltalake(root / "delta", first.unique(identity, keep="last").to_arrow())
        ours_append = measure(lambda: cl.open(root / "ours").append(more, progress=False), repeat=1)
        source = more.sort("processing_timestamp").unique(identity, keep="last").to_arrow()
        merge = deltalake.DeltaTable(root / "delta").merge(
            source,
            predicate=" AND ".join(f"t.{c} = s.{c}" for c in identity),
            source_alias="s",
            target_alias="t",
        )
        theirs_append = measure(
            lambda: merge.when_matched_update_all(
                predicate="s.processing_timestamp >= t.processing_timestamp"
            ).when_not_matched_insert_all().execute(),
            repeat=1,
        )
        ours = measure(lambda: cl.open(root / "ours").events())
        theirs = measure(lambda: pl.read_delta(str(root / "delta")))
        if ours.result.height != theirs.result.height:
            raise AssertionError("the local store and the Delta table hold different events")
    finally:
        shutil.rmtree(root)
    note = "the Delta table keeps winners only; the store keeps every delivery and its digests"
    return [
        row(
            "local store append (sources/local/)", more.height, ours_append,
            f"deltalake {deltalake.__version__} merge on the identity", theirs_append, note=note,
        ),
        row(
            "local store load (.events())", ours.result.height, ours,
            "pl.read_delta of the same winners", theirs, note=note,
        ),
    ]  # fmt: skip


#: The Cassandra and store rows write what they read: not run above this.
MAX_SCALE = 1_000_000


def run(scale: int, quick: bool) -> list[dict]:
    n = 1_000 if quick else min(scale, MAX_SCALE)
    rows = _durations(min(n, 100_000)) + _time_uuids(n) + _java_stream(min(n, 20_000))
    return rows + _local_store(n) + _cassandra(min(n, 100_000))


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, quick=False):
        print(r)
