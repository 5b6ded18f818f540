"""A ``follow()`` generator left open does not keep Python from exiting (issue 15, item 5).

Each case runs a real interpreter against the real broker; before the fix the first one
hung until its timeout (kafka-python's consumer closed during finalisation waits forever).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.kafka

SCRIPT = textwrap.dedent(
    """
    import sys
    import concursus_lab as cl
    source = cl.open(sys.argv[1], create=True, partitions=2)
    live = source.follow(poll_timeout=0.2)
    source.append(cl.sample.parcels(5, seed=1))
    if sys.argv[2] == "started":
        print(next(live).height)
    print("leaving", sys.argv[2])
    """
)


@pytest.mark.parametrize("how", ["started", "never started"])
def test_the_interpreter_exits_with_a_follow_still_open(kafka_address, topic, how):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"kafka://{kafka_address}/{topic}", how],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails here instead of stalling the suite
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().endswith(f"leaving {how}")
    if how == "started":
        assert int(run.stdout.split()[0]) > 0  # it really followed the new events
