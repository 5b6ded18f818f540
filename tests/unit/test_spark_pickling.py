"""Classes of a notebook or a script reach Spark's workers whole, dataclass fields included.

Spark pickles a reducer, its state class and its event types with the cloudpickle it bundles;
a class defined in ``__main__`` (every class of a notebook) is pickled by value and rebuilt in
the worker. pyspark 3.5 bundles cloudpickle 2.2, which rebuilt dataclasses with foreign field
sentinels: ``dataclasses.fields(cls)`` was ``()`` in the worker, and a state's fields vanished
from the answer without a word. Checked here without starting Spark: a script pickles its own
classes the way Spark does, this process (another interpreter, as a worker is) rebuilds them.
"""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import textwrap

import pytest

from concursus_lab.exceptions import SchemaError
from concursus_lab.timetravel.state_columns import field_names, state_columns

pytest.importorskip("pyspark")

SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    from typing import ClassVar

    import concursus_lab as cl
    from concursus_lab.spark._pyspark import pyspark

    pyspark()  # what every concursus_lab.spark function asks first
    from pyspark import cloudpickle  # the pickler Spark sends functions with

    parcel = cl.EventTypes("parcel")

    @parcel.event
    class Scanned:
        depot: str

    @dataclasses.dataclass(frozen=True)
    class Where:
        depot: str
        bay: int = 0

    @dataclasses.dataclass(frozen=True)
    class Parcel:
        status: str
        where: Where
        scans: int = 0
        seen: ClassVar[int] = 0

    def reducer(state, event):
        return Parcel("scanned", Where(event.depot), (state.scans if state else 0) + 1)

    sys.stdout.buffer.write(cloudpickle.dumps((Parcel, Where, parcel, reducer)))
    """
)


@pytest.fixture(scope="module")
def rebuilt():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return pickle.loads(done.stdout)


def test_a_main_dataclass_keeps_its_fields_in_another_process(rebuilt):
    parcel, where, _, _ = rebuilt
    assert parcel.__module__ == "__main__"  # pickled by value, as a notebook's are
    assert [f.name for f in dataclasses.fields(parcel)] == ["status", "where", "scans"]
    assert [f.name for f in dataclasses.fields(where)] == ["depot", "bay"]
    assert dataclasses.asdict(parcel("x", where("LEW", 2))) == {
        "status": "x",
        "where": {"depot": "LEW", "bay": 2},
        "scans": 0,
    }


def test_a_main_reducer_s_states_become_their_fields(rebuilt):
    _, _, types, reducer = rebuilt
    scanned = types["scanned"]
    state = reducer(reducer(None, scanned(depot="A")), scanned(depot="B"))
    columns = state_columns([state])
    assert list(columns) == ["status", "where", "scans"]
    assert columns["where"].to_list() == [{"depot": "B", "bay": 0}]
    assert columns["scans"].to_list() == [2]


def test_a_dataclass_whose_fields_were_lost_is_refused_not_emptied():
    @dataclasses.dataclass
    class Broken:
        a: int

    # what cloudpickle 2.2 rebuilt: the fields are there, under sentinels of another copy
    for f in Broken.__dataclass_fields__.values():
        object.__setattr__(f, "_field_type", pickle.loads(pickle.dumps(f._field_type)))
    assert dataclasses.fields(Broken) == ()
    with pytest.raises(SchemaError, match=r"Broken.*lost its dataclass fields"):
        field_names(Broken)
