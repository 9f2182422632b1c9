"""Outbound HTTP proxies from the environment, read once per session as curl, requests and
httpx read them: ``HTTPS_PROXY`` for ``https://`` upstreams (a ``CONNECT`` tunnel, TLS end to
end), ``HTTP_PROXY`` for ``http://`` ones, ``NO_PROXY`` for hosts reached directly.

aiohttp's ``trust_env`` would read the variables (and ``~/.netrc``) again on every request and
send netrc passwords to matching upstream hosts; here they are read once, each origin's answer
is cached, and credentials in a proxy URL become a ``Proxy-Authorization`` header only.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field

import aiohttp
from yarl import URL


class InvalidProxy(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Proxy:
    url: URL  # without credentials
    # {"Proxy-Authorization": "Basic ..."} when the URL carried credentials.
    headers: dict[str, str] | None = field(default=None, repr=False)


def parse_proxy(value: str) -> Proxy:
    """A proxy URL; a bare ``host:port`` means ``http://host:port``."""
    try:
        url = URL(value if "://" in value else f"http://{value}")
        port = url.port
    except ValueError:
        raise InvalidProxy("a proxy URL must be http:// or https:// with a host") from None
    if url.scheme not in ("http", "https") or not url.host or port is None:
        raise InvalidProxy("a proxy URL must be http:// or https:// with a host")
    headers = None
    if url.user is not None:
        headers = {"Proxy-Authorization": aiohttp.encode_basic_auth(url.user, url.password or "")}
    return Proxy(url.with_user(None).with_path("").with_query(None).with_fragment(None), headers)


class Proxies:
    """Which proxy, if any, each origin is reached through."""

    def __init__(self, by_scheme: dict[str, Proxy], no_proxy: str = "") -> None:
        self.by_scheme = by_scheme
        self.no_proxy = no_proxy
        self._routes: dict[tuple[str, str, int | None], Proxy | None] = {}

    @classmethod
    def from_environment(cls) -> Proxies:
        """Raises InvalidProxy naming the variable (never its value, which may hold a
        password)."""
        found = urllib.request.getproxies_environment()  # lower- and upper-case names
        by_scheme = {}
        for scheme in ("http", "https"):
            if found.get(scheme):
                try:
                    by_scheme[scheme] = parse_proxy(found[scheme])
                except InvalidProxy:
                    name = f"{scheme.upper()}_PROXY"
                    raise InvalidProxy(f"{name} is not an http:// or https:// URL") from None
        return cls(by_scheme, found.get("no", ""))

    def for_url(self, url: URL) -> Proxy | None:
        key = (url.scheme, url.raw_host or "", url.port)
        try:
            return self._routes[key]
        except KeyError:
            pass
        proxy = self.by_scheme.get(url.scheme)
        if proxy is not None and self.no_proxy:
            host = key[1] if ":" not in key[1] else f"[{key[1]}]"
            if urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
                f"{host}:{key[2]}", {"no": self.no_proxy}
            ):
                proxy = None
        if len(self._routes) > 4096:
            self._routes.clear()
        self._routes[key] = proxy
        return proxy


NO_PROXIES = Proxies({})
