"""A schema registry's REST API, as Confluent's and Apicurio's (``/apis/ccompat/v7``) speak it.

Only what reading and appending need: a schema by id (or GUID), a subject's versions, and
registering a schema under a subject. Credentials come from the environment, as Kafka's do,
so they never sit in a notebook or a URL:

=======================================  ===============================================
variable                                 meaning
=======================================  ===============================================
``CONCURSUS_LAB_REGISTRY_URL``            the registry, when ``registry=True``
``CONCURSUS_LAB_REGISTRY_USERNAME``       HTTP basic auth user (Confluent Cloud: the API key)
``CONCURSUS_LAB_REGISTRY_PASSWORD``       its password (the API secret)
``CONCURSUS_LAB_REGISTRY_TOKEN``          or a bearer token (OAuth)
``CONCURSUS_LAB_REGISTRY_SSL_CAFILE``     a PEM file of CAs to trust for https
=======================================  ===============================================

>>> Client("http://127.0.0.1:8081/").url
'http://127.0.0.1:8081'
>>> Client("http://user:secret@host:8081")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
concursus_lab.exceptions.SourceError: credentials do not belong in a registry URL ...
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from concursus_lab.exceptions import SourceError, SourceUnavailable

ENV_PREFIX = "CONCURSUS_LAB_REGISTRY_"
_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"


class NotFound(Exception):
    """The registry answered 404 (its message is the exception's)."""


class Client:
    """The registry at ``url`` (its Confluent API's base), with the environment's credentials."""

    def __init__(
        self,
        url: str,
        *,
        environ: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SourceError(
                f"`registry` must be the registry's http(s) URL, like "
                f"'http://127.0.0.1:8081/apis/ccompat/v7'; got {url!r}."
            )
        if "@" in parsed.netloc:
            raise SourceError(
                "credentials do not belong in a registry URL (it is shown and logged); set "
                f"{ENV_PREFIX}USERNAME and {ENV_PREFIX}PASSWORD (or {ENV_PREFIX}TOKEN) instead."
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        env = os.environ if environ is None else environ
        self._headers = {"Accept": _ACCEPT}
        user, password = env.get(ENV_PREFIX + "USERNAME"), env.get(ENV_PREFIX + "PASSWORD")
        token = env.get(ENV_PREFIX + "TOKEN")
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif user:
            pair = f"{user}:{password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        cafile = env.get(ENV_PREFIX + "SSL_CAFILE")
        self._context = ssl.create_default_context(cafile=cafile) if cafile else None

    def __getstate__(self) -> dict[str, Any]:  # ssl contexts do not pickle (Spark ships this)
        state = dict(self.__dict__)
        state["_context"] = None
        return state

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- requests ------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call; the answer's JSON. 404 raises :class:`NotFound`; an unreachable registry
        :class:`~concursus_lab.exceptions.SourceUnavailable`; another refusal SourceError."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            message = _message(exc)
            if exc.code == 404:
                raise NotFound(message) from None
            if exc.code in (401, 403):
                raise SourceError(
                    f"the registry at {self.url} refused {method} {path} ({exc.code}: {message});"
                    f" check {ENV_PREFIX}USERNAME/{ENV_PREFIX}PASSWORD or {ENV_PREFIX}TOKEN."
                ) from None
            if exc.code >= 500:
                raise SourceUnavailable(
                    f"the registry at {self.url} failed {method} {path} ({exc.code}: {message});"
                    " try again later."
                ) from None
            raise SourceError(
                f"the registry at {self.url} refused {method} {path} ({exc.code}: {message})."
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceUnavailable(
                f"cannot reach the schema registry at {self.url} ({reason}). {_hint(self.url)}"
            ) from None

    def schema(self, schema_id: int) -> dict[str, Any]:
        """``GET /schemas/ids/{id}``: ``schema``, ``schemaType`` (absent: Avro), ``references``."""
        return self.request("GET", f"/schemas/ids/{int(schema_id)}")

    def schema_by_guid(self, guid: str) -> dict[str, Any]:
        """``GET /schemas/guids/{guid}`` (Confluent's newer API; Apicurio 3.3 answers 404)."""
        return self.request("GET", f"/schemas/guids/{urllib.parse.quote(guid)}")

    def versions_of(self, schema_id: int) -> list[dict[str, Any]]:
        """``GET /schemas/ids/{id}/versions``: the subjects and versions that hold the id."""
        return self.request("GET", f"/schemas/ids/{int(schema_id)}/versions")

    def version(self, subject: str, version: int | str = "latest") -> dict[str, Any]:
        """``GET /subjects/{subject}/versions/{version}``: ``id``, ``version``, ``schema``..."""
        return self.request("GET", f"/subjects/{_quote(subject)}/versions/{version}")

    def register(
        self, subject: str, schema: str, schema_type: str = "AVRO", references: list | None = None
    ) -> int:
        """Register ``schema`` under ``subject`` (or find it there); returns its id."""
        body: dict[str, Any] = {"schema": schema}
        if schema_type != "AVRO":
            body["schemaType"] = schema_type
        if references:
            body["references"] = references
        return int(self.request("POST", f"/subjects/{_quote(subject)}/versions", body)["id"])


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return exc.reason or str(exc.code)
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("detail") or answer)
    return str(answer)


def _hint(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "Is the local registry running? `concursus-lab services start registry`."
    return f"Check the URL, the network and the {ENV_PREFIX}* settings."


def from_env(environ: Mapping[str, str] | None = None) -> str:
    """The registry URL in ``CONCURSUS_LAB_REGISTRY_URL``, or an error saying to set it."""
    env = os.environ if environ is None else environ
    url = env.get(ENV_PREFIX + "URL", "").strip()
    if not url:
        raise SourceError(
            f"registry=True reads the registry's URL from {ENV_PREFIX}URL, which is not set; "
            "set it (e.g. http://127.0.0.1:8081/apis/ccompat/v7) or pass registry='http://...'."
        )
    return url
