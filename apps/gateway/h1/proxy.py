"""Outbound HTTP proxies, read from the environment as curl, requests and httpx read them:
``HTTPS_PROXY`` for ``https://`` upstreams (reached through a ``CONNECT`` tunnel, TLS end to
end), ``HTTP_PROXY`` for ``http://`` ones (requests in absolute form), ``NO_PROXY`` for the
hosts to reach directly. Credentials in a proxy URL (``http://user:pass@proxy:3128``) become a
``Proxy-Authorization: Basic`` header and appear nowhere else.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from apps.gateway.h1.errors import InvalidRequest
from apps.gateway.h1.wire import Origin


@dataclass(frozen=True, slots=True)
class Proxy:
    scheme: str  # how the gateway talks to the proxy: http or https
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # Proxy-Authorization value

    @property
    def origin(self) -> Origin:
        return (self.scheme, self.host, self.port)


def parse_proxy(url: str) -> Proxy:
    """A proxy URL; a bare ``host:port`` means ``http://host:port``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
        scheme = ""
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("a proxy URL must be http:// or https:// with a host")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(scheme, parts.hostname, port or (443 if scheme == "https" else 80), authorization)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    by_scheme: Mapping[str, Proxy]  # upstream scheme -> proxy
    no_proxy: str = ""

    @classmethod
    def from_environment(cls) -> ProxySettings:
        found = urllib.request.getproxies_environment()  # lower- and upper-case names
        by_scheme = {}
        for scheme in ("http", "https"):
            if found.get(scheme):
                try:
                    by_scheme[scheme] = parse_proxy(found[scheme])
                except InvalidRequest:  # the value may hold credentials: name the variable
                    name = f"{scheme.upper()}_PROXY"
                    raise InvalidRequest(f"{name} is not an http:// or https:// URL") from None
        return cls(by_scheme, found.get("no", ""))

    def for_origin(self, origin: Origin) -> Proxy | None:
        proxy = self.by_scheme.get(origin[0])
        if proxy is None:
            return None
        host = origin[1] if ":" not in origin[1] else f"[{origin[1]}]"
        if self.no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            f"{host}:{origin[2]}", {"no": self.no_proxy}
        ):
            return None
        return proxy


NO_PROXIES = ProxySettings({})
