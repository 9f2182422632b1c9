"""Request heads and response body decoding: the bytes side of the upstream client."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote, urlsplit

from apps.gateway.h1.errors import InvalidRequest, MalformedResponse

Origin = tuple[str, str, int]  # scheme, host, port


@lru_cache(maxsize=4096)
def target(url: str) -> tuple[Origin, bytes, bytes, bytes]:
    """(origin, the request line's tail, the same in absolute form (through a proxy), the Host
    header line) for ``url``, worked out once."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("upstream URL must be http:// or https:// with a host")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    # Keep existing %XX escapes; escape what may not appear raw in a request target.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    netloc = f"[{host}]" if ":" in host else host
    if port != default:
        netloc += f":{port}"
    return (
        (scheme, host, port),
        f" {path} HTTP/1.1\r\n".encode("ascii"),
        f" {scheme}://{netloc}{path} HTTP/1.1\r\n".encode("ascii"),
        f"Host: {netloc}\r\n".encode("ascii"),
    )


def host_of(url: str) -> str:
    try:
        return target(url)[0][1]
    except ValueError:  # InvalidRequest, or a port out of range
        return "upstream"


# The body is framed here (Content-Length); framing headers given by a caller are dropped.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


def request_head(
    method: str,
    url: str,
    headers: Mapping[str, str],
    length: int,
    *,
    proxy_authorization: str | None = None,
    absolute: bool = False,
) -> bytes:
    """The request line and headers for ``url``; in absolute form (with the proxy's
    credentials, if any) for a forwarding proxy."""
    _, line, absolute_line, host = target(url)
    if absolute:
        line = absolute_line
    lines = [f"Proxy-Authorization: {proxy_authorization}\r\n"] if proxy_authorization else []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _FRAMING:
            continue
        if lowered == "host":
            host = b""  # the caller's Host wins (it may be signed)
        lines.append(f"{name}: {value}\r\n")
    text = "".join(lines)
    # Each header adds exactly one CR and one LF; any other would split or smuggle a header.
    count = len(lines)
    if text.count("\n") != count or text.count("\r") != count or "\x00" in text:
        raise InvalidRequest("a request header contains a line break")
    return b"".join(
        (
            method.encode("ascii"),
            line,
            host,
            text.encode("utf-8"),
            b"Content-Length: %d\r\n\r\n" % length,
        )
    )


class _Inflate:
    __slots__ = ("_first", "_host", "_obj")

    def __init__(self, wbits: int, host: str) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._host = host
        self._first = wbits == zlib.MAX_WBITS

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._obj.decompress(data)
        except zlib.error:
            if self._first:  # "deflate" sent raw, without the zlib wrapper
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self.decompress(data)
            raise MalformedResponse("sent a body that does not decompress", self._host) from None
        finally:
            self._first = False

    def flush(self) -> bytes:
        return self._obj.flush()


def decoder_for(encoding: str | None, host: str) -> _Inflate | None:
    """The response is never asked to be compressed; a server that compresses anyway is
    decoded for gzip and deflate, and refused for anything else."""
    if not encoding:
        return None
    value = encoding.strip().lower()
    if value in ("identity", ""):
        return None
    if value in ("gzip", "x-gzip"):
        return _Inflate(16 + zlib.MAX_WBITS, host)
    if value == "deflate":
        return _Inflate(zlib.MAX_WBITS, host)
    raise MalformedResponse(f"sent an unsupported content-encoding ({value[:40]})", host)
