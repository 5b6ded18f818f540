"""A RabbitMQ stream that a restarted broker has not recovered yet is waited for, not reported
as lost: the broker's own words at each step are recognised (texts as RabbitMQ 3.10 sent them,
the second from a CI run where a read right after a restart failed with them)."""

import pika.exceptions
import pytest

from concursus_lab.exceptions import SourceUnavailable
from concursus_lab.sources.amqp import messages

QUEUE_NOT_BACK = (
    404,
    "NOT_FOUND - home node 'concursus_lab_51365@localhost' of durable queue 'r-history' in "
    "vhost '/' is down or inaccessible",
)
MEMBER_NOT_STARTED = (
    406,
    "PRECONDITION_FAILED - queue 'queue 'faults-fcbf9f1a-history' in vhost '/'' does not have "
    "a replica on the local node",
)
NO_SUCH_QUEUE = (404, "NOT_FOUND - no queue 'r-history' in vhost '/'")


@pytest.mark.parametrize("reply", [QUEUE_NOT_BACK, MEMBER_NOT_STARTED])
def test_a_stream_not_recovered_yet_is_recognised_at_declare_and_at_consume(reply):
    closed = pika.exceptions.ChannelClosedByBroker(*reply)
    assert messages.recovering(closed)  # a read's Stopped carries this as its cause
    try:
        raise SourceUnavailable("the stream is there but not up yet") from closed
    except SourceUnavailable as declared:
        assert messages.recovering(declared)


def test_a_missing_stream_or_a_lost_connection_is_not_waited_for():
    assert not messages.recovering(pika.exceptions.ChannelClosedByBroker(*NO_SUCH_QUEUE))
    assert not messages.recovering(ConnectionResetError(104, "Connection reset by peer"))
    assert not messages.recovering(None)
