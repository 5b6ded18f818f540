"""Connecting to Cassandra: the URL, credentials and TLS from the environment, the session.

The session's rows are tuples (``tuple_factory``); :mod:`.raw_cells` then makes it hand
every cell over as the bytes Cassandra sent.
"""

from __future__ import annotations

import os
import re
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

from concursus_lab.common.optional import require
from concursus_lab.exceptions import SourceError, SourceUnavailable

#: Environment variables read when the matching option is not given.
ENVIRONMENT = {
    "username": "CONCURSUS_LAB_CASSANDRA_USERNAME",
    "password": "CONCURSUS_LAB_CASSANDRA_PASSWORD",
    "ca_file": "CONCURSUS_LAB_CASSANDRA_CA_FILE",
    "cert_file": "CONCURSUS_LAB_CASSANDRA_CERT_FILE",
    "key_file": "CONCURSUS_LAB_CASSANDRA_KEY_FILE",
    "tls": "CONCURSUS_LAB_CASSANDRA_TLS",
    "consistency": "CONCURSUS_LAB_CASSANDRA_CONSISTENCY",
    "local_dc": "CONCURSUS_LAB_CASSANDRA_LOCAL_DC",
}

#: Settings a ``cassandra://`` URL's query string may carry (``?consistency=ONE``).
URL_OPTIONS = ("consistency", "ca_file", "local_dc")

DEFAULT_PORT = 9042
DEFAULT_KEYSPACE = "concursus"

START_HINT = (
    "Is Cassandra running? Start the local one with `concursus-lab services start cassandra`."
)


def driver() -> Any:
    """The DataStax Python driver (``cassandra``, with ``cassandra.cluster`` loaded)."""
    return require(
        "cassandra", "cassandra.cluster", needed_by="Cassandra sources", extra="cassandra"
    )


@dataclass(frozen=True)
class Address:
    hosts: tuple[str, ...]
    port: int
    keyspace: str
    username: str | None
    options: dict[str, str]

    @property
    def url(self) -> str:
        """The URL without credentials or options."""
        return f"cassandra://{','.join(self.hosts)}:{self.port}/{self.keyspace}"


def parse_url(url: str) -> Address:
    """``cassandra://[user@]host1[,host2...][:port]/keyspace[?option=value...]``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "cassandra":
        raise SourceError(f"not a cassandra:// URL: {url!r}")
    netloc = parts.netloc
    username = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        if ":" in userinfo:
            raise SourceError(
                "a password does not belong in a URL (it would end up in notebooks and logs); "
                f"set ${ENVIRONMENT['password']} instead."
            )
        username = urllib.parse.unquote(userinfo) or None
    hosts, ports = [], set()
    for item in filter(None, netloc.split(",")):
        host, sep, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        if not sep:
            host, port = item, ""
        if port:
            if not port.isdigit():
                raise SourceError(f"port {port!r} in {url!r} is not a number.")
            ports.add(int(port))
        hosts.append(host.strip("[]"))
    if not hosts:
        raise SourceError(f"no host in {url!r}; write e.g. 'cassandra://127.0.0.1:9042/concursus'.")
    if len(ports) > 1:
        raise SourceError(f"every host must use the same port; {url!r} names {sorted(ports)}.")
    keyspace = check_keyspace(parts.path.strip("/") or DEFAULT_KEYSPACE)
    options = dict(urllib.parse.parse_qsl(parts.query))
    return Address(
        tuple(hosts), ports.pop() if ports else DEFAULT_PORT, keyspace, username, options
    )


#: Cassandra's rule for a keyspace written unquoted in CQL: an ASCII letter, then letters,
#: digits or _, at most 48 in all (SchemaConstants.NAME_LENGTH), and not a reserved word.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")
#: CQL's reserved keywords (Cassandra 5.0, "Appendix A: CQL Keywords"), which need quotes.
RESERVED = frozenset(
    [
        "add",
        "allow",
        "alter",
        "and",
        "apply",
        "asc",
        "authorize",
        "batch",
        "begin",
        "by",
        "columnfamily",
        "create",
        "default",
        "delete",
        "desc",
        "describe",
        "drop",
        "entries",
        "execute",
        "from",
        "full",
        "grant",
        "if",
        "in",
        "index",
        "infinity",
        "insert",
        "into",
        "is",
        "keyspace",
        "limit",
        "materialized",
        "mbean",
        "mbeans",
        "modify",
        "nan",
        "norecursive",
        "not",
        "null",
        "of",
        "on",
        "or",
        "order",
        "primary",
        "rename",
        "replace",
        "revoke",
        "schema",
        "select",
        "set",
        "table",
        "to",
        "token",
        "truncate",
        "unlogged",
        "unset",
        "update",
        "use",
        "using",
        "view",
        "where",
        "with",
    ]
)


def check_keyspace(name: str) -> str:
    """``name`` as Cassandra stores it (folded to lower case, as CQL folds unquoted names),
    or a :class:`SourceError` saying what Cassandra's rule is."""
    if not _NAME.fullmatch(name):
        raise SourceError(
            f"keyspace {name!r} is not a valid Cassandra name: an ASCII letter, then letters, "
            "digits or _, at most 48 in all, e.g. 'concursus' or 'parcels_2026'."
        )
    if name.lower() in RESERVED:
        raise SourceError(
            f"keyspace {name!r} is a reserved word in CQL; choose another name, e.g. "
            f"'{name.lower()}_events'."
        )
    return name.lower()


def connect(
    address: Address,
    *,
    consistency: int,
    username: str | None,
    password: str | None,
    tls: ssl.SSLContext | None,
    local_dc: str | None,
    timeout: float,
) -> tuple[Any, Any]:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.policies import (
        DCAwareRoundRobinPolicy,
        ExponentialReconnectionPolicy,
        TokenAwarePolicy,
    )
    from cassandra.query import tuple_factory

    if password and not username:
        raise SourceError(f"a password was given but no user name; set ${ENVIRONMENT['username']}.")
    # Ask for protocol v5 (Cassandra 4.0 and later), then v4: letting the driver find out
    # by itself logs a warning for each DataStax-only version it tries first.
    for version in (5, 4):
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=local_dc)),
            consistency_level=consistency,
            request_timeout=timeout,
            row_factory=tuple_factory,
        )
        cluster = Cluster(
            contact_points=list(address.hosts),
            port=address.port,
            auth_provider=PlainTextAuthProvider(username, password or "") if username else None,
            ssl_context=tls,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            reconnection_policy=ExponentialReconnectionPolicy(0.5, 5.0, max_attempts=None),
            connect_timeout=min(timeout, 10.0),
            compression=False,
            protocol_version=version,
        )
        try:
            session = cluster.connect()
        except NoHostAvailable as exc:
            centres = sorted({h.datacenter for h in cluster.metadata.all_hosts() if h.datacenter})
            cluster.shutdown()
            if version == 5 and "protocol version" in str(exc).lower():
                continue
            if local_dc is not None and centres and local_dc not in centres:
                raise SourceError(
                    f"`local_dc` {local_dc!r} is not a data centre of the Cassandra cluster at "
                    f"{address.url}; its data centres are {centres}. Pass one of them (or "
                    f"none), as local_dc= or ${ENVIRONMENT['local_dc']}."
                ) from None
            _raise_unavailable(address, exc)
        except Exception as exc:
            cluster.shutdown()
            _raise_unavailable(address, exc)
        break
    return cluster, session


def _raise_unavailable(address: Address, exc: Exception) -> None:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    errors = exc.errors if isinstance(exc, NoHostAvailable) else {address.url: exc}
    if not isinstance(errors, dict):  # the driver lists only the hosts it tried
        errors = {str(host): "no connection could be opened" for host in errors or ()}
    if isinstance(exc, AuthenticationFailed) or any(
        isinstance(why, AuthenticationFailed) for why in errors.values()
    ):
        raise SourceUnavailable(
            f"Cassandra at {address.url} refused the credentials ({exc}). Set "
            f"${ENVIRONMENT['username']} and ${ENVIRONMENT['password']}."
        ) from exc
    reasons = "; ".join(f"{host}: {why}" for host, why in errors.items()) or str(exc)
    raise SourceUnavailable(
        f"cannot reach Cassandra at {address.url} ({reasons}). {START_HINT}"
    ) from exc


def ssl_context(tls: bool | ssl.SSLContext | None, ca_file: str | None) -> ssl.SSLContext | None:
    if isinstance(tls, ssl.SSLContext):
        return tls
    ca_file = ca_file or env("ca_file")
    wanted = tls if tls is not None else bool(ca_file) or env("tls") in ("1", "true", "yes")
    if not wanted:
        return None
    context = ssl.create_default_context(cafile=ca_file)
    cert, key = env("cert_file"), env("key_file")
    if cert:
        context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True)
class Connection:
    """An open session: where it went, the cluster and session objects, the consistency."""

    address: Address
    cluster: Any
    session: Any
    consistency: str  # the level's name, e.g. "LOCAL_QUORUM"


def open_session(
    url: str,
    *,
    consistency: str | None = None,
    username: str | None = None,
    password: str | None = None,
    tls: bool | ssl.SSLContext | None = None,
    ca_file: str | None = None,
    local_dc: str | None = None,
    timeout: float = 30.0,
) -> Connection:
    """The one way concursus-lab connects (``cl.open``, ``cl.export``): each setting from
    the argument, else the URL's query, else the environment (:data:`ENVIRONMENT`)."""
    cassandra = driver()
    address = parse_url(url)
    options = address.options
    level = consistency or options.get("consistency") or env("consistency") or "LOCAL_QUORUM"
    level = level.upper()
    if level not in cassandra.ConsistencyLevel.name_to_value:
        names = ", ".join(sorted(cassandra.ConsistencyLevel.name_to_value))
        raise SourceError(f"`consistency` must be one of {names}; got {level!r}.")
    cluster, session = connect(
        address,
        consistency=cassandra.ConsistencyLevel.name_to_value[level],
        username=username or address.username or env("username"),
        password=password or env("password"),
        tls=ssl_context(tls, ca_file or options.get("ca_file")),
        local_dc=local_dc or options.get("local_dc") or env("local_dc"),
        timeout=float(timeout),
    )
    return Connection(address, cluster, session, level)


def env(option: str) -> str | None:
    return os.environ.get(ENVIRONMENT[option]) or None
