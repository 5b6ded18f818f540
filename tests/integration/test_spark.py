"""The same answers on Spark: every question asked of real Spark (local[2]) equals the local one.

Spark reads the project's own Cassandra and Kafka (a keyspace and a topic of this module's
own, holding the same sample), and takes the fixtures and the contract's hand-made
histories from polars. Every answer, collected with ``.to_polars()``, must equal exactly the
local function's on the same events: ``state_at`` on both time axes, ``latest``, ``index``,
``lateness``, a keyed fold (by truck, across parcels) and a fold by aggregate. Every test
has a timeout: a Spark failure can hang rather than raise (SPARK.md, pitfall 8).
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls  # needs the spark extra, which the test command installs
from concursus_lab.exceptions import SourceError
from concursus_lab.sample import LoadedOntoTruck, on_board, parcel_state, parcel_types
from tests.contract import canonical_sort, event, frame
from tests.late_records import late_since, produce_stamped_with_event_time

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    # pyspark 3.5 checks pandas' and pyarrow's versions with distutils' classes
    pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning"),
]

AT = "2026-03-06 12:00"
KNOWN_AT = "2026-03-06 09:00"


TRUCK_LOAD = cl.fold(on_board, types=parcel_types, key="truckId", initial=0)
PER_PARCEL = cl.fold(parcel_state, types=parcel_types, key="aggregate_id")


def _question(name: str, engine, events, by: str = "stream_id"):
    """One question, asked of ``engine`` (``cl`` or ``cls``) about ``events``."""
    asked = {
        "state_at": lambda: engine.state_at(events, parcel_state, types=parcel_types, at=AT),
        "state_at_known_at": lambda: engine.state_at(
            events, parcel_state, types=parcel_types, at=AT, known_at=KNOWN_AT
        ),
        "state_at_first": lambda: engine.state_at(
            events, parcel_state, types=parcel_types, known_at=KNOWN_AT, duplicates="first"
        ),
        "latest": lambda: engine.latest(events, at=AT),
        "latest_known_at": lambda: engine.latest(events, known_at=KNOWN_AT),
        "index": lambda: engine.index(events, "truckId", at=AT, known_at=KNOWN_AT),
        "lateness": lambda: engine.lateness(events, by=by),
        "lateness_all": lambda: engine.lateness(events),
        "fold_by_truck": lambda: engine.project(events, TRUCK_LOAD, at=AT, known_at=KNOWN_AT),
        "fold_by_parcel": lambda: engine.project(events, PER_PARCEL, known_at=KNOWN_AT),
    }[name]()
    if engine is cl:
        return asked.frame.sort("aggregate_id") if name.startswith("state_at") else asked
    return asked.to_polars()


QUESTIONS = [
    "state_at",
    "state_at_known_at",
    "state_at_first",
    "latest",
    "latest_known_at",
    "index",
    "lateness",
    "lateness_all",
    "fold_by_truck",
    "fold_by_parcel",
]


def _same(got: pl.DataFrame, expected: pl.DataFrame, what: str) -> None:
    assert got.schema == expected.schema, f"{what}: {got.schema} != {expected.schema}"
    assert got.equals(expected), f"{what}:\n{got}\n!=\n{expected}"


# -- Spark and the servers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark(cassandra_address):
    session = cls.session("local[2]", cassandra=cassandra_address, memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    return cl.sample.parcels(300, seed=16)


@pytest.fixture(scope="module")
def cassandra_url(history, cassandra_address):
    keyspace = f"spark_test_{uuid.uuid4().hex[:10]}"
    url = f"cassandra://{cassandra_address}/{keyspace}"
    store = cl.open(url, create=True)
    store.append(history)
    store.close()
    yield url
    _cql(cassandra_address, f"DROP KEYSPACE IF EXISTS {keyspace}")


def _cql(address: str, *statements: tuple | str) -> None:
    """Run CQL statements (text, or (text, values)) on the Cassandra at ``address``."""
    from cassandra.cluster import Cluster

    host, port = address.rsplit(":", 1)
    cluster = Cluster([host], port=int(port))
    try:
        session = cluster.connect()
        for statement in statements:
            text, values = (statement, None) if isinstance(statement, str) else statement
            session.execute(text, values, timeout=120)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def kafka_url(history, kafka_address):
    topic = f"spark_test_{uuid.uuid4().hex[:10]}"
    url = f"kafka://{kafka_address}/{topic}"
    store = cl.open(url, create=True, partitions=3)
    store.append(history.head(history.height // 2), layout="flat")
    store.append(history.tail(history.height - history.height // 2), layout="nested")
    yield url
    _delete_topic(kafka_address, topic)


def _delete_topic(address: str, topic: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=address)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()


@pytest.fixture(scope="module")
def read(spark, cassandra_url, kafka_url):
    """Per source: (the local source's events, Spark's read of the same events)."""
    out = {}
    for name, url in (("cassandra", cassandra_url), ("kafka", kafka_url)):
        source = cl.open(url)
        local = source.events(duplicates="keep")
        if hasattr(source, "close"):
            source.close()
        out[name] = (local, cls.read(url, spark))
        out[name][1].frame.cache()
    yield out
    for _, events in out.values():
        events.frame.unpersist()


@pytest.mark.cassandra
@pytest.mark.kafka
@pytest.mark.parametrize("name", ["cassandra", "kafka"])
def test_spark_reads_what_the_local_source_reads(read, name):
    local, events = read[name]
    order = ["kafka_partition", "kafka_offset"] if name == "kafka" else [*cl.IDENTITY]
    _same(events.to_polars().sort(order), local.sort(order), f"{name} read")
    assert events.quarantine.count() == 0


@pytest.mark.cassandra
@pytest.mark.kafka
@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("name", ["cassandra", "kafka"])
def test_every_answer_from_the_servers_is_the_local_one(read, name, question):
    local, events = read[name]
    by = "kafka_partition" if name == "kafka" else "stream_id"
    expected = _question(question, cl, local, by)
    assert expected.height > 0
    _same(_question(question, cls, events.frame, by), expected, f"{question} from {name}")


@pytest.mark.kafka
def test_a_kafka_read_since_a_processing_time_is_the_local_one(spark, history, kafka_url):
    since = history["processing_timestamp"].sort()[history.height // 2]
    source = cl.open(kafka_url)
    local = source.events(since=since, duplicates="keep")
    assert 0 < local.height < history.height
    events = cls.read(kafka_url, spark, since=since)
    _same(events.to_polars(), local, "a read since a processing time")
    assert events.to_polars()["processing_timestamp"].min() >= since
    with pytest.raises(SourceError, match="seeks a Kafka topic"):
        cls.read("cassandra://127.0.0.1:9042/concursus", spark, since=since)


@pytest.mark.kafka
def test_a_kafka_read_since_keeps_late_events_as_the_local_one_does(spark, kafka_address):
    """Records stamped with their event time: the seek must not pass a late event that was
    processed after `since` (issue 28.4), on Spark as locally."""
    events = cl.sample.parcels(1500, seed=14)
    topic = f"spark_test_{uuid.uuid4().hex[:10]}"
    url = f"kafka://{kafka_address}/{topic}"
    cl.open(url, create=True, partitions=3, topic_config={"retention.ms": "-1"})
    try:
        produce_stamped_with_event_time(kafka_address, topic, events)
        since = late_since(events)
        expected = canonical_sort(events.filter(pl.col("processing_timestamp") >= since))
        on_spark = cls.read(url, spark, since=since).to_polars()
        assert canonical_sort(on_spark).equals(expected)
        _same(on_spark, cl.open(url).events(since=since, duplicates="keep"), "late records")
    finally:
        _delete_topic(kafka_address, topic)


@pytest.mark.cassandra
def test_a_cassandra_read_asked_for_tls_needs_the_connector_s_tls(
    spark, cassandra_url, monkeypatch
):
    monkeypatch.setenv("CONCURSUS_LAB_CASSANDRA_TLS", "1")
    with pytest.raises(SourceError, match=r"no spark\.cassandra\.connection\.ssl\.enabled=true"):
        cls.read(cassandra_url, spark)


# -- the fixtures and the contract's histories, handed over from polars ---------------------


def _contract_history() -> pl.DataFrame:
    """The contract's hand-made cases in one history (times: seconds after 2 March)."""
    return frame(
        event("p1", 10, 20, parameters='{"depotId":"Lewisham"}'),
        event("p1", 10, 30, parameters='{"depotId":"Croydon"}'),  # the same identity, later
        event("p1", 20, 500, name="loadedOntoTruck", parameters='{"truckId":"T1"}'),
        event("p2", 15, 16),
        event("p2", 15, 16, stream_id="b"),  # the same instant on another stream
        event("p3", 10, 20, parameters='{"depotId":"A"}'),
        event("p3", 10, 90, parameters='{"depotId":"B"}'),
        event("p3", 40, 30, name="loadedOntoTruck", parameters='{"truckId":"T1"}'),
        event("p3", 50, 60, name="delivered", parameters='{"destinationId":"x"}'),
        event("t1", 10, 11, aggregate_type="truck", name="departed", parameters="{}"),
    )


HISTORIES = {
    "messy": lambda: cl.sample.fixture("messy"),
    "parcels": lambda: cl.sample.fixture("parcels"),
    "contract": _contract_history,
}


@pytest.fixture(scope="module")
def handed_over(spark):
    return {name: (make(), cls.from_polars(make(), spark)) for name, make in HISTORIES.items()}


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("history_name", list(HISTORIES))
def test_every_answer_on_the_fixtures_is_the_local_one(handed_over, history_name, question):
    local, events = handed_over[history_name]
    if history_name == "contract":  # its times are around 2 March, midnight
        at, known = "2026-03-02 00:00:45", "2026-03-02 00:01:00"
        global AT, KNOWN_AT
        saved = AT, KNOWN_AT
        AT, KNOWN_AT = at, known
        try:
            expected = _question(question, cl, local)
            got = _question(question, cls, events)
        finally:
            AT, KNOWN_AT = saved
    else:
        expected, got = _question(question, cl, local), _question(question, cls, events)
    _same(got, expected, f"{question} on {history_name}")


def test_a_fold_warns_on_the_driver_of_what_did_not_decode_as_locally(spark):
    messy = cl.sample.fixture("messy")
    typos = messy.head(3).with_columns(pl.lit("recievedAtDepot").alias("name"))
    events = pl.concat([messy, typos])
    pattern = r"fold 'on_board': 3 parcel event\(s\) could not be decoded.*3 x unknown"
    with pytest.warns(UserWarning, match=pattern):
        expected = cl.project(events, TRUCK_LOAD)
    with pytest.warns(UserWarning, match=pattern) as caught:
        got = cls.project(cls.from_polars(events, spark), TRUCK_LOAD).to_polars()
    ours = [w for w in caught if "could not be decoded" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__  # at the caller, as locally
    _same(got, expected, "the fold beside its warning")


def test_state_at_warns_on_the_driver_of_what_did_not_decode_as_locally(spark):
    messy = cl.sample.fixture("messy")
    typos = messy.head(3).with_columns(pl.lit("recievedAtDepot").alias("name"))
    events = pl.concat([messy, typos])
    with pytest.warns(cl.exceptions.UndecodableEvents, match="3 x unknown") as local:
        expected = cl.state_at(events, parcel_state, types=parcel_types)
    with pytest.warns(cl.exceptions.UndecodableEvents) as caught:
        got = cls.state_at(cls.from_polars(events, spark), parcel_state, types=parcel_types)
    ours = [w for w in caught if issubclass(w.category, cl.exceptions.UndecodableEvents)]
    assert len(ours) == 1 and ours[0].filename == __file__  # at the caller, as locally
    mine = [w for w in local if issubclass(w.category, cl.exceptions.UndecodableEvents)]
    assert str(ours[0].message) == str(mine[0].message)
    assert got.counts == expected.counts


def test_state_at_counts_and_summary_are_the_local_ones(handed_over):
    local, events = handed_over["messy"]
    expected = cl.state_at(local, parcel_state, types=parcel_types, at=AT, known_at=KNOWN_AT)
    got = cls.state_at(events, parcel_state, types=parcel_types, at=AT, known_at=KNOWN_AT)
    assert got.counts == expected.counts
    assert got.frame.count() == expected.frame.height
    assert got.summary().splitlines()[1] == expected.summary().splitlines()[1]


def test_types_of_another_aggregate_type_is_an_error_and_a_bucket_without_them_is_not(spark):
    """Locally and on Spark, `types=` of an aggregate type the events lack is an error; a
    bucket of a mixed history that holds none of that type is not a mistake."""
    bulbs = cl.EventTypes("lightbulb")

    @bulbs.initial
    class Installed: ...

    lights = bulbs.encode(
        [Installed(aggregate_id=f"b{i}", event_timestamp="2026-03-02") for i in range(40)]
    )
    mixed = pl.concat([cl.sample.parcels(3, seed=1), lights])
    expected = cl.state_at(mixed, parcel_state, types=parcel_types)
    got = cls.state_at(cls.from_polars(mixed, spark), parcel_state, types=parcel_types, buckets=16)
    assert got.counts == expected.counts and got.to_polars().equals(expected.frame)
    with pytest.raises(cl.exceptions.SchemaError, match="`events` has no parcel events: 40 rows"):
        cls.state_at(cls.from_polars(lights, spark), parcel_state, types=parcel_types)


def test_a_reducer_that_raises_raises_its_reducer_error(handed_over):
    _, events = handed_over["messy"]

    def broken(state, event):
        if isinstance(event, LoadedOntoTruck):
            raise ValueError("no trucks today")
        return parcel_state(state, event)

    with pytest.raises(cl.exceptions.ReducerError, match="no trucks today"):
        cls.state_at(events, broken, types=parcel_types)


def test_a_view_function_is_given_the_bounded_events_as_spark(handed_over):
    from pyspark.sql import functions as F

    local, events = handed_over["messy"]

    @cl.projection(key="name", duplicates="keep")
    def deliveries(frame):
        return frame.groupBy("name").agg(F.count(F.lit(1)).alias("count"))

    @cl.projection(key="name", duplicates="keep")
    def deliveries_locally(frame):
        return frame.group_by("name").agg(pl.len().cast(pl.Int64).alias("count"))

    got = cls.project(events, deliveries, known_at=KNOWN_AT).to_polars()
    expected = cl.project(local, deliveries_locally, known_at=KNOWN_AT).sort("name")
    _same(got, expected, "a view")
    with pytest.raises(cl.exceptions.ProjectionError, match="on Spark a view"):
        cls.project(events, deliveries_locally)


# -- what is pushed down, and what does not decode ---------------------------------------------


@pytest.mark.cassandra
def test_aggregate_type_and_ids_are_pushed_down_to_cassandra(spark, read, cassandra_url):
    local, _ = read["cassandra"]
    ids = sorted(set(local["aggregate_id"].to_list()))[:3]
    events = cls.read(cassandra_url, spark, aggregate_type="parcel", aggregate_ids=ids)
    plan = events.frame._jdf.queryExecution().executedPlan().toString()
    assert '"aggregatetype" = ?' in plan and '"aggregateid" IN (?, ?, ?)' in plan, plan
    expected = local.filter(pl.col("aggregate_id").is_in(ids)).sort(*cl.IDENTITY)
    _same(events.to_polars().sort(*cl.IDENTITY), expected, "a pushed-down read")


@pytest.fixture(scope="module")
def messy_kafka(kafka_address):
    """A topic of good events, a value that is not JSON, an array with one bad event, and
    an array of two good ones."""
    from kafka import KafkaProducer

    topic = f"spark_test_bad_{uuid.uuid4().hex[:8]}"
    url = f"kafka://{kafka_address}/{topic}"
    cl.open(url, create=True, partitions=2).append(cl.sample.fixture("messy"))
    producer = KafkaProducer(bootstrap_servers=kafka_address)
    good = (
        b'{"aggregateType":"parcel","aggregateId":"x","name":"delivered",'
        b'"eventTimestamp":1,"parameters":{"destinationId":"d"}}'
    )
    values = (b"not json", b"[" + good + b',{"aggregateType":"parcel"}]', good)
    for value in (*values, b"[" + good.replace(b":1,", b":2,") + b"," + good + b"]"):
        producer.send(topic, key=b"x", value=value, partition=1)
    producer.flush()
    producer.close()
    yield url
    _delete_topic(kafka_address, topic)


@pytest.mark.kafka
def test_kafka_records_that_do_not_decode_are_the_local_sources_quarantine(spark, messy_kafka):
    source = cl.open(messy_kafka)
    with pytest.warns(UserWarning, match="could not be decoded"):
        local = source.events(duplicates="keep")
    events = cls.read(messy_kafka, spark)
    _same(events.to_polars(), local, "the events beside the bad records")
    order = ["kafka_partition", "kafka_offset"]
    quarantine = cls.to_polars(events.quarantine).sort(order)
    assert quarantine.height == 2
    _same(quarantine, source.quarantine.sort(order), "the quarantine")


@pytest.mark.cassandra
def test_cassandra_rows_that_do_not_decode_go_to_the_quarantine(spark, cassandra_address):
    keyspace = f"spark_test_bad_{uuid.uuid4().hex[:8]}"
    url = f"cassandra://{cassandra_address}/{keyspace}"
    store = cl.open(url, create=True)
    store.append(cl.sample.fixture("messy"))
    insert = (
        f"INSERT INTO {keyspace}.event (aggregateType, aggregateId, eventTimestamp, "
        "streamId, processingId, name, version, parameters, characteristics) VALUES "
        "('parcel', %s, '2026-03-02 10:00:00+0000', '', {pid}, 'receivedAtDepot', '0', %s, 0)"
    )
    try:
        _cql(
            cassandra_address,
            (insert.format(pid="now()"), ("bad-json", {"depotId": "not json"})),
            (insert.format(pid="null"), ("no-pid", {"depotId": '"Lewisham"'})),
        )
        with pytest.warns(UserWarning):
            local = store.events(duplicates="keep")
        events = cls.read(url, spark)
        quarantine = cls.to_polars(events.quarantine)
        assert quarantine["aggregate_id"].to_list() == ["bad-json"]
        _same(quarantine, store.quarantine, "the row whose parameter is not JSON")
        # the row with no processingId: processed when Cassandra wrote it, as locally
        assert local.filter(aggregate_id="no-pid").height == 1
        _same(events.to_polars().sort(*cl.IDENTITY), local.sort(*cl.IDENTITY), "the rows")
    finally:
        store.close()
        _cql(cassandra_address, f"DROP KEYSPACE IF EXISTS {keyspace}")


def test_an_answer_no_longer_referenced_lets_spark_drop_what_it_kept(spark, handed_over):
    import gc

    _, events = handed_over["messy"]
    kept = spark.sparkContext._jsc.getPersistentRDDs

    before = len(kept())
    answer = cls.latest(events)
    assert answer.to_polars().height > 0
    assert len(kept()) == before + 1
    del answer
    gc.collect()
    assert len(kept()) == before
