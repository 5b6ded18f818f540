"""The options each engine takes, read from what the user typed, with an error for the rest.

Every engine takes ``by``. Besides: the model ``max_out_of_orderness``, ``allowed_lateness``,
``idle_timeout``; Flink those and ``interval``; Spark ``max_out_of_orderness`` (the delay),
``trigger``, ``inputs``, ``policy``; Kafka Streams ``grace`` only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from concursus_lab.common.time import to_timedelta
from concursus_lab.delivery.arrivals import micros
from concursus_lab.delivery.engines import Engine, Settings
from concursus_lab.exceptions import SchemaError

#: Why an option does not apply, per option.
_WHY = {
    "allowed_lateness": {
        "spark": "Spark counts nothing behind its watermark; raise the delay instead",
        "kafka-streams": "Kafka Streams calls it the grace: pass grace=...",
    },
    "idle_timeout": {
        "spark": "Spark's watermark is the maximum over partitions, so a silent one cannot "
        "hold it back",
        "kafka-streams": "Kafka Streams keeps stream time per task, so a silent partition "
        "holds no other back",
    },
    "interval": "`interval` is Flink's pipeline.auto-watermark-interval",
    "trigger": "`trigger` is Spark's micro-batch interval",
    "inputs": "`inputs` names Spark's input streams",
    "policy": "`policy` is Spark's multipleWatermarkPolicy",
    "grace": "`grace` is Kafka Streams' grace period; the other engines call it allowed_lateness",
}


@dataclass(frozen=True)
class Options:
    """What the user asked for, as typed (durations as timedeltas)."""

    settings: Settings
    bound: dt.timedelta
    allowed: dt.timedelta
    idle: dt.timedelta | None
    shown: dict[str, Any]  # engine-specific options, for results and snippets
    inputs: str | None


def read_options(
    engine: Engine,
    max_out_of_orderness: Any,
    allowed_lateness: Any,
    *,
    idle_timeout: Any = None,
    grace: Any = None,
    interval: Any = None,
    trigger: Any = None,
    inputs: str | None = None,
    policy: str | None = None,
    need_bound: bool = True,
) -> Options:
    """The :class:`Settings` for ``engine``; an option it does not take is an error."""
    given = {
        "allowed_lateness": allowed_lateness,
        "idle_timeout": idle_timeout,
        "grace": grace,
        "interval": interval,
        "trigger": trigger,
        "inputs": inputs,
        "policy": policy,
    }
    for name, value in given.items():
        if value is None or name in engine.options:
            continue
        if name == "allowed_lateness" and to_timedelta(value, name) == dt.timedelta(0):
            continue
        why = _WHY[name]
        reason = why.get(engine.name, "") if isinstance(why, dict) else why
        raise SchemaError(
            f"engine={engine.name!r} takes no `{name}` (got {value!r}): {reason}. "
            f"It takes: by, {', '.join(_knobs(engine))}."
        )
    if engine.name == "kafka-streams":
        if max_out_of_orderness is not None:
            raise SchemaError(
                f"engine='kafka-streams' has no watermark delay (got max_out_of_orderness="
                f"{max_out_of_orderness!r}): stream time is the newest record timestamp of a "
                "task, and grace=... says how far behind it a record may still be counted."
            )
        bound = dt.timedelta(0)
        allowed = to_timedelta(grace if grace is not None else dt.timedelta(0), "grace")
    else:
        if max_out_of_orderness is None and need_bound:
            raise SchemaError(
                f"engine={engine.name!r} needs `max_out_of_orderness`, the delay behind the "
                "newest event time, e.g. '2m'; cl.recommend_watermark suggests one."
            )
        bound = to_timedelta(max_out_of_orderness or dt.timedelta(0), "max_out_of_orderness")
        allowed = to_timedelta(allowed_lateness or dt.timedelta(0), "allowed_lateness")
    idle = None if idle_timeout is None else to_timedelta(idle_timeout, "idle_timeout")
    every = interval if interval is not None else trigger
    step = None if every is None else to_timedelta(every, "interval" if interval else "trigger")
    if step is not None and step <= dt.timedelta(0):
        raise SchemaError(f"the interval must be positive, got {every!r}.")
    if policy is not None and policy not in ("min", "max"):
        raise SchemaError(
            f"`policy` must be 'min' (Spark's default) or 'max', got {policy!r}: "
            "spark.sql.streaming.multipleWatermarkPolicy."
        )
    unit = dt.timedelta(microseconds=engine.unit)
    settings = Settings(
        bound=bound // unit,
        allowed=allowed // unit,
        idle=None if idle is None else micros(idle),
        interval=None if step is None else micros(step),
        policy=policy or "min",
    )
    shown = {"interval": step} if interval is not None else {}
    if trigger is not None:
        shown["trigger"] = step
    if policy is not None or inputs is not None:
        shown["policy"] = policy or "min"
    return Options(settings, bound, allowed, idle, shown, inputs)


def _knobs(engine: Engine) -> list[str]:
    return (["max_out_of_orderness"] if engine.name != "kafka-streams" else []) + list(
        engine.options
    )
