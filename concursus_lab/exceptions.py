"""Errors raised by concursus-lab.

Every error descends from :class:`ConcursusLabError`, so ``except cl.ConcursusLabError``
catches all of them. Messages name the offending parameter, show the value, and say
what to do next.
"""

from __future__ import annotations


class ConcursusLabError(Exception):
    """Root of every error raised by concursus-lab."""


class SchemaError(ConcursusLabError, ValueError):
    """A frame is not a canonical event frame (missing column, wrong dtype, bad value)."""


class UnknownEventType(SchemaError, KeyError):
    """``types[name]`` or ``types[name, version]`` names no declared event type; the message
    names the aggregate type and the nearest names or versions declared."""

    __str__ = Exception.__str__  # the message as written, not KeyError's quoted repr


class DecodeError(ConcursusLabError, ValueError):
    """An event could not be decoded (unknown type, bad parameters), in strict mode."""


class SourceError(ConcursusLabError, ValueError):
    """A source URL or option is wrong (unknown scheme, missing folder, bad option)."""


class StoreDamaged(SourceError):
    """A local store's manifest or a data file is not what was written; the message names it."""


class StoreUnwritable(ConcursusLabError, OSError):
    """A local store could not be written (a full disk, a read-only folder); nothing was added.

    The message names the store and the cause, says that the store is unchanged (and how
    that was checked), and what to do; ``__cause__`` is the operating system's error.
    """


class SourceUnavailable(ConcursusLabError, ConnectionError):
    """A server (Cassandra, Kafka) cannot be reached, or a keyspace/topic is missing."""


class IncompleteRead(ConcursusLabError):
    """A read stopped before it was complete.

    ``.partial`` holds the frame read so far (never silently returned as if complete) and
    the message says what was read and what was not.
    """

    def __init__(self, message: str, partial=None):
        super().__init__(message)
        self.partial = partial


class IncompleteWrite(ConcursusLabError):
    """A write stopped part-way: some events are stored, the others are not.

    ``.written`` counts the events the server confirmed and ``.unwritten`` holds the frame of
    the others (those refused and those never sent), ready to append again once the cause is
    fixed; the message says which is which and why.
    """

    def __init__(self, message: str, written: int, unwritten=None):
        super().__init__(message)
        self.written = written
        self.unwritten = unwritten


class MissingDependency(ConcursusLabError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` line."""


class ServiceError(ConcursusLabError, RuntimeError):
    """A local service (Cassandra, Kafka) could not be fetched, started or stopped."""


class ReducerError(ConcursusLabError):
    """A reducer raised; the message names the aggregate and the event, ``__cause__`` the error.

    Attributes ``aggregate_id`` and ``event`` hold them.
    """

    def __init__(self, message: str, aggregate_id: str, event: object) -> None:
        super().__init__(message)
        self.aggregate_id = aggregate_id
        self.event = event


class UpcastError(ConcursusLabError):
    """An upcaster raised, or returned something that is not what its event becomes.

    The message names the upcaster, the aggregate and the event (as stored, and its
    parameters at that step); ``__cause__`` is the upcaster's own error. Attributes
    ``aggregate_id`` and ``event`` (the stored row as a dict, or None when no single event
    is to blame) hold them.
    """

    def __init__(self, message: str, aggregate_id: str | None, event: object) -> None:
        super().__init__(message)
        self.aggregate_id = aggregate_id
        self.event = event


class BreakpointError(ConcursusLabError):
    """A breakpoint (``stop_when``, or the explorer's condition box) raised or cannot run.

    The message names the condition, the step and the event; ``__cause__`` is the error.
    """


class ProjectionError(ConcursusLabError):
    """A projection raised, or returned something other than a view frame.

    The message names the projection and how many events it was given; ``__cause__`` is
    the original error.
    """


class ConflictingDeliveries(UserWarning):
    """A warning: deliveries of one identity differ in name, version or parameters.

    Only one of them counts (``duplicates=``), so the others' events would be lost without
    a word; the message names how many identities, shows up to three (the aggregate, the
    identity, both versions, which won) and says what to do: if they are different events,
    give them a ``sequence`` or an ``event_id`` (``cl.Mapping(sequence=..., event_id=...)``).
    """


class UndecodableEvents(UserWarning):
    """A warning: events that could not be decoded were left out of an answer.

    Once per call, naming how many, the commonest reason and where they are listed (the
    result's ``.undecodable``); ``strict=True`` raises :class:`DecodeError` instead.
    """


class UnknownStateShape(UserWarning):
    """A warning: an answer with no state has a placeholder ``state`` column (type Null),
    because neither the reducer's return annotation nor ``initial=`` says the state's shape;
    an answer with states would have their columns. Annotate the reducer
    (``-> MyState``) to have the same columns empty or not."""
