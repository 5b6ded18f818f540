"""Sources of events: one entry point, :func:`open`, for every kind.

=========================================  ==========================================
URL                                        source
=========================================  ==========================================
``data/sample`` or ``file:///abs/path``    the embedded local store (Parquet files)
``orders.csv``, ``exports/*.parquet``      files of your own events, with ``mapping=``
                                           (CSV, Parquet, NDJSON; a file, folder or glob)
``cassandra://host:9042/keyspace``         Concursus's ``Event`` table in Cassandra
``cassandra://...?table=orders``           any table of your own events, with ``mapping=``
``pekko+cassandra://host:9042/keyspace``   a Pekko (or ``akka+cassandra://``: Akka) Persistence
                                           journal, read-only (docs/pekko.md)
``kafka://host:9092/topic``                a Kafka topic of Concursus JSON events (with
                                           ``mapping=``: of JSON objects of your own shape)
``redis://host:6379/0``                    Concursus's Redis event sets (``rediss://``: TLS)
``amqp://host:5672/exchange?stream=name``  a RabbitMQ topic exchange (and a stream bound to it)
``hazelcast://host:5701/map``              a live idempotency filter's map (not a history:
                                           an :class:`~.hazelcast.window.IdempotencyWindow`)
``fixture:messy``, ``fixture:parcels``     a small fixed history, in memory (``cl.sample.fixture``)
=========================================  ==========================================

Every kind but the local store, the files and the fixtures is a plug-in registered in the
entry point group ``concursus_lab.sources`` (:mod:`~concursus_lab.sources.kinds`), ours as a
third party's; drivers are imported only when their kind of source is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from concursus_lab.exceptions import SourceError
from concursus_lab.sources import kinds
from concursus_lab.sources.base import Source

if TYPE_CHECKING:
    from concursus_lab.sources.hazelcast.window import IdempotencyWindow

#: Environment variable naming the source that ``cl.open()`` opens when given no URL.
SOURCE_VARIABLE = "CONCURSUS_LAB_SOURCE"


def default_source() -> str:
    """The source ``cl.open()`` opens when given none.

    ``$CONCURSUS_LAB_SOURCE`` when set (so one notebook runs on production data by hand and
    on a fixture in CI), else the sample store of this checkout (``data/sample``).
    """
    chosen = os.environ.get(SOURCE_VARIABLE)
    if chosen:
        return chosen
    here = Path(__file__).resolve().parents[2] / "data" / "sample"
    if (here / "store.json").exists():
        return str(here)
    raise SourceError(
        f"no default source: ${SOURCE_VARIABLE} is not set and there is no sample store at "
        f"{str(here)!r}. Pass a URL to cl.open(...), set ${SOURCE_VARIABLE}, or write a sample "
        "with `concursus-lab sample data/sample`."
    )


def open(url: str | os.PathLike | None = None, **options) -> Source | IdempotencyWindow:
    """Open a source of events by URL or path; see the table in this module's docstring.

    Parameters
    ----------
    url
        Where the events are. None opens :func:`default_source`.
    **options
        Options for that kind of source, e.g. ``create=True`` to make a new local store
        (or Cassandra tables, or a Kafka topic).

    >>> import concursus_lab as cl
    >>> cl.open("no/such/folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SourceError: no store at 'no/such/folder' ... create=True)`, ...
    """
    if url is None:
        url = default_source()
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise SourceError(f"`url` must be a string or path, got {url!r}.")
    if url.startswith("fixture:"):
        from concursus_lab.sources.fixtures import fixture
        from concursus_lab.sources.memory import MemorySource

        if options:
            raise SourceError(
                f"a fixture takes no options, got {sorted(options)}; open it as cl.open({url!r})."
            )
        # prints as the fixture's name on every machine
        return MemorySource(fixture(url.removeprefix("fixture:").strip("/")), url=url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() == "file":
        return _local(rest if sep else url, options)
    cls = kinds.kind(scheme, url)
    if options.get("mapping") is not None and not getattr(cls, "takes_mapping", False):
        raise SourceError(
            f"{scheme}:// sources hold Concursus's own layout and take no mapping; "
            "mapping= is for files, tables and topics of your own shape."
        )
    return cls.from_url(url, **options)


def _local(path: str, options: dict) -> Source:
    """A local path: files of your own events, or the embedded store."""
    from concursus_lab.sources.files.source import FilesSource, holds_files

    if holds_files(path.partition("?")[0]):
        return FilesSource(path, **options)
    from concursus_lab.sources.local.store import LocalStore

    if options.get("mapping") is not None:
        raise SourceError(
            f"{path!r} is a store, which holds canonical events already; mapping= is for "
            "files, tables and topics of your own shape."
        )
    options.pop("mapping", None)
    return LocalStore(path, **options)


def open_history(url: str | os.PathLike | None = None, **options) -> Source:
    """:func:`open`, for callers that need a history of events (copying, writing a sample).

    >>> open_history("hazelcast://127.0.0.1:5701/eventWindow")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SourceError: hazelcast://127.0.0.1:5701/eventWindow is a live ...
    """
    opened = open(url, **options)
    if not isinstance(opened, Source):
        raise SourceError(
            f"{opened.url} is a live idempotency filter's map, not a history of events: read "
            "it with cl.open(url).entries(), and hold it against a history with "
            "cl.idempotency(events, ttl=...).compare(entries)."
        )
    return opened


__all__ = ["SOURCE_VARIABLE", "Source", "default_source", "open", "open_history"]
