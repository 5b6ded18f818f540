"""A live idempotency filter on a real Hazelcast member, filled the way Concursus fills it.

"The way Concursus fills it" is Java: ``java/.../FillWindow.java`` does what Concursus's
``IdempotentEventFilter`` does (``putIfAbsent(SerializableEventIdentity, true)`` on a map whose
time to live is configured), through Hazelcast's own Java client, with a key class of
Concursus's wire shape (its name, fields and serialVersionUID). It is compiled with ``javac``
against the member's jar at the start of this module. Nothing here is mocked.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceUnavailable
from concursus_lab.services._hazelcast import Hazelcast
from concursus_lab.sources.hazelcast.keys import JavaKey

pytestmark = pytest.mark.hazelcast

JAVA_SOURCES = Path(__file__).parent / "java"
FILLER = "com.opencredo.concursus.hazelcast.events.FillWindow"
UTC = dt.UTC


@pytest.fixture(scope="module")
def filler(hazelcast_address, tmp_path_factory) -> list[str]:
    """The command that runs FillWindow, compiled here against the member's own jar."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.fail("javac and java (Java 17) are needed to fill a map as Concursus does")
    jars = ":".join(str(jar) for jar in Hazelcast().runtime(None)[1])
    classes = tmp_path_factory.mktemp("filler")
    sources = sorted(str(p) for p in JAVA_SOURCES.rglob("*.java"))
    subprocess.run([javac, "-d", str(classes), "-cp", jars, *sources], check=True, timeout=120)
    return [java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", f"{classes}:{jars}", FILLER]


def _java(
    filler: list[str], address: str, window: str, mode: str, *args: str, events=None
) -> list[str]:
    lines = ""
    if events is not None:
        rows = cl.frame.identity.by_delivery(events).select(cl.IDENTITY).rows()
        lines = "".join(
            f"{kind}\t{agg}\t{int(at.timestamp() * 1000)}\t{stream}\n"
            for kind, agg, at, stream in rows
        )
    done = subprocess.run(
        [*filler, address, window, mode, *args],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def _now_history(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` delivered in the same order within the last few seconds, a millisecond
    apart (a history the live map, filled now, should hold all of)."""
    start = dt.datetime.now(UTC) - dt.timedelta(seconds=5)
    order = pl.col("processing_timestamp").rank("ordinal") - 1
    return events.with_columns(
        (pl.lit(start) + pl.duration(milliseconds=order))
        .dt.truncate("1ms")
        .alias("processing_timestamp")
    )


@pytest.fixture
def window_name() -> str:
    return f"eventWindow-{uuid.uuid4().hex[:8]}"


def test_a_map_filled_by_java_reads_back_as_its_identities(filler, hazelcast_address, window_name):
    history = cl.sample.parcels(120, seed=3)
    verdicts = _java(filler, hazelcast_address, window_name, "offer", "600", events=history)
    # the live filter stops exactly the repeats the replay (no expiry within the test) stops
    replay = cl.idempotency(history, ttl="600s")
    assert verdicts == [
        "stopped" if outcome == "stopped" else "passed"
        for outcome in replay.deliveries["outcome"].cast(pl.String).to_list()
    ]
    with cl.open(f"hazelcast://{hazelcast_address}/{window_name}") as window:
        before = dt.datetime.now(UTC).replace(microsecond=0)
        entries = window.entries()
        assert window.quarantine.height == 0
        assert len(window) == entries.height
    expected = history.select(cl.IDENTITY).unique().sort(cl.IDENTITY)
    assert entries.select(cl.IDENTITY).equals(expected)
    assert window.ttl == dt.timedelta(seconds=600)
    assert (entries["expires_at"] - entries["stored_at"]).unique().to_list() == [
        dt.timedelta(seconds=600)
    ]
    assert entries["stored_at"].max() <= before + dt.timedelta(seconds=1)
    assert entries["stored_at"].min() >= before - dt.timedelta(minutes=5)


def test_keys_offered_from_python_are_the_ones_java_finds(filler, hazelcast_address, window_name):
    history = cl.sample.fixture("messy")
    with cl.open(f"hazelcast://{hazelcast_address}/{window_name}") as window:
        offered = window.offer(history)
    assert offered["passed"].sum() == history.select(cl.IDENTITY).n_unique()
    # Java's own equality (of its deserialised keys) and Hazelcast's (of their bytes) agree
    assert (
        _java(filler, hazelcast_address, window_name, "contains", events=history)
        == ["true"] * history.height
    )
    again = _java(filler, hazelcast_address, window_name, "offer", events=history)
    assert again == ["stopped"] * history.height


def test_an_entry_is_gone_after_the_map_s_ttl_and_a_repeat_then_passes(
    filler, hazelcast_address, window_name
):
    history = cl.sample.fixture("parcels").head(5)
    # 3 s: the time a new client takes to connect on a busy machine (1 s was not always)
    verdicts = _java(filler, hazelcast_address, window_name, "offer", "3", events=history)
    assert set(verdicts) == {"passed"}
    with cl.open(f"hazelcast://{hazelcast_address}/{window_name}") as window:
        assert window.entries().height == 5
        deadline = dt.datetime.now(UTC) + dt.timedelta(seconds=20)
        while window.entries().height and dt.datetime.now(UTC) < deadline:
            time.sleep(0.2)
        assert window.entries().height == 0
        assert window.offer(history)["passed"].all()  # slipped through, as the replay says


def test_keys_that_are_not_concursus_identities_are_quarantined_and_counted(
    filler, hazelcast_address, window_name
):
    history = cl.sample.fixture("parcels").head(3)
    _java(filler, hazelcast_address, window_name, "offer", events=history)
    _java(filler, hazelcast_address, window_name, "foreign")
    url = f"hazelcast://{hazelcast_address}/{window_name}"
    with cl.open(url) as window:
        window._map().put("a-text-key", True).result()
        with pytest.warns(UserWarning, match="3 map keys"):
            entries = window.entries()
        reasons = sorted(window.quarantine["reason"].to_list())
    assert entries.height == 3  # the good keys are all still read
    assert reasons == [
        "a Map.Entry key (Hazelcast type id -22)",  # Hazelcast's own serializer, not Java's
        "a str key, not Java serialization",
        "the key is a java.net.URI, not Concursus's "
        "com.opencredo.concursus.hazelcast.events.SerializableEventIdentity",
    ]
    foreign = window.quarantine.filter(pl.col("reason").str.contains("URI"))["key"][0]
    assert foreign.startswith(b"\xac\xed\x00\x05")  # the stored bytes, kept as they are


def test_a_history_held_against_the_live_map_finds_what_the_map_lost(
    filler, hazelcast_address, window_name
):
    history = _now_history(cl.sample.parcels(60, seed=5))
    _java(filler, hazelcast_address, window_name, "offer", "600", events=history)
    lost = history.row(0, named=True)
    with cl.open(f"hazelcast://{hazelcast_address}/{window_name}") as window:
        key = JavaKey.of_identity(*(lost[c] for c in cl.IDENTITY))
        assert window._map().remove(key).result() is True  # the same bytes: the same entry
        found = cl.idempotency(history, ttl=window.ttl or "600s").compare(window.entries())
    n = history.select(cl.IDENTITY).n_unique()
    assert found.counts == {"held": n - 1, "missing": 1, "not in history": 0, "held past expiry": 0}
    missing = found.identities.filter(pl.col("status") == "missing").row(0, named=True)
    assert missing["aggregate_id"] == lost["aggregate_id"]


def test_an_unreachable_cluster_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    window = cl.open(f"hazelcast://127.0.0.1:{port}/eventWindow", timeout=1)
    with pytest.raises(SourceUnavailable, match=f"127.0.0.1:{port}.*services start hazelcast"):
        window.entries()


def test_a_url_without_a_map_or_with_unknown_options_is_refused():
    with pytest.raises(cl.exceptions.SourceError, match="no map named"):
        cl.open("hazelcast://127.0.0.1:5701/")
    with pytest.raises(cl.exceptions.SourceError, match="only \\?cluster="):
        cl.open("hazelcast://127.0.0.1:5701/w?ttl=5")
    assert cl.open("hazelcast://h/w?cluster=prod").cluster == "prod"
