"""The same answers on Spark when the types, the state and the reducer live in ``__main__``.

A notebook's classes and functions, and a script's, are ``__main__``'s: Spark pickles them by
value and rebuilds them in its workers, unlike the sample's, which the workers import. Here a
script declares its own event types, a frozen dataclass state with a nested dataclass, a
reducer and two folds, asks the questions of the same-answers suite (``test_spark.py``) both
locally and on Spark (local[2]), and writes every answer; this test compares them column by
column. Before pyspark's pickler kept dataclass fields, the Spark answers had only
``aggregate_id``, ``events_applied`` and ``last_event_timestamp``, and nothing warned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import polars as pl
import pytest

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

SCRIPT = textwrap.dedent(
    '''
    """A user's own script: every class and function here is __main__'s."""
    import dataclasses
    import json
    import sys
    import warnings

    import concursus_lab as cl
    import concursus_lab.spark as cls

    warnings.simplefilter("ignore", DeprecationWarning)
    out = sys.argv[1]
    parcel = cl.EventTypes("parcel")

    @parcel.event
    class ReceivedAtDepot:
        depotId: str

    @parcel.event
    class LoadedOntoTruck:
        truckId: str

    @parcel.event
    class DeliveryFailed:
        pass

    @parcel.terminal
    class Delivered:
        destinationId: str

    @dataclasses.dataclass(frozen=True)
    class Where:
        depot: str | None
        truck: str | None

    @dataclasses.dataclass(frozen=True)
    class Parcel:
        status: str
        where: Where
        attempts: int = 0

    def parcel_state(state, event):
        state = state or Parcel("new", Where(None, None))
        match event:
            case ReceivedAtDepot(depotId=depot):
                return Parcel("at depot", Where(depot, None), state.attempts)
            case LoadedOntoTruck(truckId=truck):
                return Parcel("on truck", Where(state.where.depot, truck), state.attempts + 1)
            case DeliveryFailed():
                return dataclasses.replace(state, status="failed")
            case Delivered():
                return dataclasses.replace(state, status="delivered")
        raise TypeError(event)

    @dataclasses.dataclass(frozen=True)
    class Load:
        parcels: int
        last: str

    def on_board(load, event):
        match event:
            case LoadedOntoTruck():
                return Load(load.parcels + 1, type(event).__name__)
            case Delivered() | DeliveryFailed():
                return Load(load.parcels - 1, type(event).__name__)
        return load

    AT, KNOWN_AT = "2026-03-06 12:00", "2026-03-06 09:00"
    by_truck = cl.fold(on_board, types=parcel, key="truckId", initial=Load(0, ""))
    by_parcel = cl.fold(parcel_state, types=parcel, key="aggregate_id")
    questions = {
        "state_at": lambda e, events: e.state_at(events, parcel_state, types=parcel, at=AT),
        "state_at_known_at": lambda e, events: e.state_at(
            events, parcel_state, types=parcel, at=AT, known_at=KNOWN_AT
        ),
        "state_at_first": lambda e, events: e.state_at(
            events, parcel_state, types=parcel, known_at=KNOWN_AT, duplicates="first"
        ),
        "fold_by_truck": lambda e, events: e.project(events, by_truck, at=AT),
        "fold_by_parcel": lambda e, events: e.project(events, by_parcel, known_at=KNOWN_AT),
    }
    histories = {
        "sample": cl.sample.parcels(300, seed=16),
        "messy": cl.sample.fixture("messy"),
        "parcels": cl.sample.fixture("parcels"),
    }
    spark = cls.session("local[2]", cassandra=None, memory="1g")
    asked = []
    for history, local in histories.items():
        events = cls.from_polars(local, spark)
        for question, ask in questions.items():
            expected, got = ask(cl, local), ask(cls, events)
            expected = expected.frame if question.startswith("state_at") else expected
            expected.write_ipc(f"{out}/{history}-{question}-local.arrow")
            got.to_polars().write_ipc(f"{out}/{history}-{question}-spark.arrow")
            asked.append([history, question, got.frame.count()])
    spark.stop()
    print(json.dumps(asked))
    '''
)


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    """Run the script in its own interpreter: (history, question, rows on Spark), folder."""
    folder = tmp_path_factory.mktemp("main")
    script = folder / "users_script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(folder)],
        capture_output=True,
        text=True,
        timeout=840,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), folder


FIELDS = {"state_at": ["status", "where", "attempts"], "fold_by_truck": ["parcels", "last"]}


def test_a_script_s_own_classes_give_the_local_answers_column_by_column(answers):
    asked, folder = answers
    assert len(asked) == 15
    for history, question, rows in asked:
        expected = pl.read_ipc(folder / f"{history}-{question}-local.arrow")
        got = pl.read_ipc(folder / f"{history}-{question}-spark.arrow")
        what = f"{question} of {history}"
        fields = FIELDS.get(question.split("_known")[0].replace("_first", ""), [])
        if question == "fold_by_parcel":
            fields = FIELDS["state_at"]
        assert [c for c in fields if c in expected.columns] == fields, what
        assert expected.height > 0 and rows == expected.height, what
        assert got.columns == expected.columns, f"{what}: {got.columns}"
        for column in expected.columns:
            assert got[column].equals(expected[column]), f"{what}, column {column!r}"
