"""Hold a RabbitMQ consumer at a fixed delivery, to meet a fault there whatever the machine.

:func:`after_deliveries` wraps pika's own ``BlockingChannel.consume`` (the one call every
receiving path of the AMQP source makes), so a test can kill the broker, or interrupt the
read as Ctrl-C would, once the consumer has taken exactly ``n`` messages and asks for more.
"""

from __future__ import annotations

from collections.abc import Callable


def after_deliveries(monkeypatch, n: int, action: Callable[[], None]) -> dict:
    """Run ``action`` when a consumer that has taken ``n`` messages asks for the next one
    (once); returns a dict whose ``"taken"`` counts the messages consumers took."""
    from pika.adapters.blocking_connection import BlockingChannel

    consume = BlockingChannel.consume
    seen = {"taken": 0, "done": False}

    def held(self, *args, **kwargs):
        for item in consume(self, *args, **kwargs):
            if item[0] is not None:
                seen["taken"] += 1
            yield item
            if seen["taken"] >= n and not seen["done"]:
                seen["done"] = True
                action()

    monkeypatch.setattr(BlockingChannel, "consume", held)
    return seen


def interrupt() -> None:
    """What Ctrl-C does to a read waiting for the broker."""
    raise KeyboardInterrupt
