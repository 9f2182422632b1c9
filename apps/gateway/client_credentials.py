"""Provider credentials a client sends with one request, for model groups that allow it.

A client may send its own provider key and/or base URL (``api_key`` / ``api_base`` in the body,
or the ``x-provider-api-key`` / ``x-provider-api-base`` headers, which work on every route,
native ones included). They replace the deployment's for that request only: never stored,
never logged (error messages are scrubbed of the key like of the deployment's own), and the
usage row is still the gateway key's. A group accepts neither unless its admin allowed it.

A client's base URL must be http(s), name a host the group's allow-list matches (any host when
the list is empty) and must not resolve to an internal address (loopback, private, link-local,
reserved...) unless that host is listed exactly. The name is resolved here and again when the
connection is made; a DNS answer that changes in between (rebinding) is not caught.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from apps.core.errors import InvalidRequest, PermissionDenied
from apps.routing.selectors import Candidate, ClientCredentialPolicy

KEY_HEADER = b"x-provider-api-key"
BASE_HEADER = b"x-provider-api-base"
BODY_FIELDS = ("api_key", "api_base")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    api_key: str | None = None
    api_base: str | None = None

    def __repr__(self) -> str:  # never show the key, even in a traceback
        key = "****" if self.api_key else None
        return f"ClientCredentials(api_key={key}, api_base={self.api_base!r})"


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{name}' must be a non-empty string.", param=name)
    return value.strip()


def from_request(
    headers: Mapping[bytes, bytes], body: Mapping[str, Any] | None
) -> ClientCredentials | None:
    """The credentials the client sent (headers win over body fields), None when none."""
    body = body or {}
    raw_key = headers.get(KEY_HEADER)
    raw_base = headers.get(BASE_HEADER)
    key = _text(
        raw_key.decode("latin-1") if raw_key is not None else body.get("api_key"), "api_key"
    )
    base = _text(
        raw_base.decode("latin-1") if raw_base is not None else body.get("api_base"), "api_base"
    )
    if key is None and base is None:
        return None
    return ClientCredentials(api_key=key, api_base=base)


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def _addresses(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidRequest(
            f"The api_base host '{host}' cannot be resolved.", param="api_base"
        ) from None
    return [str(info[4][0]) for info in infos]


async def check_api_base(url: str, policy: ClientCredentialPolicy) -> str:
    """``url`` when a client may send the group's requests there. Raises InvalidRequest."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidRequest("'api_base' is not a valid URL.", param="api_base") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest("'api_base' must be an http(s) URL with a host.", param="api_base")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("'api_base' must not carry credentials.", param="api_base")
    hosts = policy.api_base_hosts
    if hosts and not any(fnmatch.fnmatchcase(host, pattern) for pattern in hosts):
        raise InvalidRequest(
            f"The api_base host '{host}' is not allowed for this model.", param="api_base"
        )
    if host not in hosts:
        for address in await _addresses(host, port):
            if _internal(address):
                raise InvalidRequest(
                    f"The api_base host '{host}' is an internal address.", param="api_base"
                )
    return url.rstrip("/")


async def apply(
    credentials: ClientCredentials,
    policy: ClientCredentialPolicy,
    group_name: str,
    candidates: list[Candidate],
) -> list[Candidate]:
    """The candidates with the client's credentials in place of the deployments'. Raises
    PermissionDenied when the group does not accept them, InvalidRequest for a bad URL."""
    if credentials.api_key is not None and not policy.allow_api_key:
        raise PermissionDenied(
            f"Model '{group_name}' does not accept a client-supplied provider key.",
            param="api_key",
            code="client_credentials_not_allowed",
        )
    changes: dict[str, Any] = {}
    if credentials.api_base is not None:
        if not policy.allow_api_base:
            raise PermissionDenied(
                f"Model '{group_name}' does not accept a client-supplied api_base.",
                param="api_base",
                code="client_credentials_not_allowed",
            )
        if credentials.api_key is None:
            # The deployment's credentials never go to a host the client chose.
            raise InvalidRequest(
                "A client-supplied api_base needs the client's own api_key too.",
                param="api_key",
            )
        changes["api_base"] = await check_api_base(credentials.api_base, policy)
        changes["headers"] = {}  # the deployment's extra headers may carry credentials
    if credentials.api_key is not None:
        # The client's key replaces every credential of the deployment (no token exchange).
        changes["api_key"] = credentials.api_key
        changes["access_token"] = None
    return [
        dataclasses.replace(c, target=dataclasses.replace(c.target, **changes)) for c in candidates
    ]
