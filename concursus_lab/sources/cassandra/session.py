"""What every Cassandra source shares: its session, and running statements on it page by page.

:class:`Connected` opens the session (:mod:`.connect`: URL, credentials and TLS from the
environment), makes it hand cells over as raw bytes where it can (:mod:`.raw_cells`), keeps
prepared statements, runs many statements concurrently to their last page (:mod:`.paging`),
and closes. Concursus's ``Event`` table (:mod:`.source`) and tables of your own shape
(:mod:`.table`) are both such sources.
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from concursus_lab.exceptions import SourceError
from concursus_lab.sources.cassandra import paging, raw_cells
from concursus_lab.sources.cassandra.connect import open_session, parse_url


class Connected:
    """A source's Cassandra session; see the module docstring."""

    url: str
    keyspace: str

    def _connect(
        self,
        url: str,
        *,
        consistency: str | None,
        username: str | None,
        password: str | None,
        tls: bool | ssl.SSLContext | None,
        ca_file: str | None,
        local_dc: str | None,
        concurrency: int,
        splits: int | None,
        fetch_size: int,
        retries: int,
        timeout: float,
    ) -> None:
        """Check the reading options, open the session and make it hand over raw cells."""
        self._cluster: Any = None
        self._session: Any = None
        self._raw = False
        address = parse_url(url)
        self._address = address
        self.url = address.url
        self.keyspace = address.keyspace
        for name, value in (("concurrency", concurrency), ("fetch_size", fetch_size)):
            if not isinstance(value, int) or value < 1:
                raise SourceError(f"`{name}` must be a positive int, got {value!r}.")
        if splits is not None and (not isinstance(splits, int) or splits < 1):
            raise SourceError(f"`splits` must be a positive int or None, got {splits!r}.")
        if not isinstance(retries, int) or retries < 0:
            raise SourceError(f"`retries` must be an int >= 0, got {retries!r}.")
        self._concurrency, self._splits = concurrency, splits
        self._fetch_size, self._retries, self._timeout = fetch_size, retries, float(timeout)
        self._prepared: dict[str, Any] = {}
        connection = open_session(
            url,
            consistency=consistency,
            username=username,
            password=password,
            tls=tls,
            ca_file=ca_file,
            local_dc=local_dc,
            timeout=self._timeout,
        )
        self._cluster, self._session = connection.cluster, connection.session
        self._consistency = connection.consistency
        # a source dropped without close() (a notebook cell run again) lets go of the
        # driver's threads and sockets when it is collected
        self._release = weakref.finalize(self, connection.cluster.shutdown)
        try:
            self._raw = raw_cells.install(self._session)
        except BaseException:
            self.close()
            raise

    def _prepare(self, template: str) -> Any:
        """The prepared statement of ``template`` (its ``{keyspace}`` filled in), kept."""
        statement = self._prepared.get(template)
        if statement is None:
            statement = self._session.prepare(template.format(keyspace=self.keyspace))
            statement.is_idempotent = True  # reads, and writes at a fixed timestamp
            self._prepared[template] = statement
        return statement

    def _run(
        self,
        tasks: Iterable[paging.Task],
        on_page: Callable[[paging.Task, list], None],
        on_task_done: Callable[[paging.Task], None] | None = None,
        *,
        concurrency: int | None = None,
    ) -> int:
        """Run ``tasks`` to their last page on this source's session (see :func:`paging.run`)."""
        return paging.run(
            self._session,
            tasks,
            on_page=on_page,
            on_task_done=on_task_done,
            concurrency=self._concurrency if concurrency is None else concurrency,
            retries=self._retries,
            timeout=self._timeout,
        )

    def _check_open(self) -> None:
        if self._session is None:
            raise SourceError(f"{self!r} is closed; open it again with cl.open({self.url!r}).")

    def close(self) -> None:
        """Close the connections; the source cannot be read afterwards."""
        cluster, self._cluster, self._session = getattr(self, "_cluster", None), None, None
        release = getattr(self, "_release", None)
        if release is not None:
            release()  # shuts the cluster down, once
        elif cluster is not None:
            cluster.shutdown()

    def _described(self, name: str, what: str = "") -> str:
        """``Name('url': Cassandra 5.0, 1 of 1 node(s) up, consistency ...)`` for a repr."""
        if self._cluster is None:
            return f"{name}({self.url!r}, closed)"
        try:
            hosts = list(self._cluster.metadata.all_hosts())
            versions = sorted({h.release_version for h in hosts if h.release_version})
            up = sum(1 for h in hosts if h.is_up)
            version = f"Cassandra {', '.join(versions)}, " if versions else ""
            return (
                f"{name}({self.url!r}: {what}{version}{up} of {len(hosts)} node(s) up, "
                f"consistency {self._consistency})"
            )
        except Exception:
            return f"{name}({self.url!r})"
