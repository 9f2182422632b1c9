"""Upstream URLs, built with ``urllib.parse`` rather than by joining strings.

An ``api_base`` may carry a query string (a proxy's routing parameter, a key some gateways
want in the URL): the appended path goes before it, and the provider's own query after it.
A path segment the client controls (the model name, through a wildcard group) is
percent-encoded and refused when it holds path or control characters, so that no client can
steer a request carrying the gateway's credentials to another path or add a query to it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, urlsplit, urlunsplit

from apps.core.errors import InvalidRequest

# RFC 3986 ``pchar`` without "/" and "%": what stays literal in one segment (":" appears in
# versioned model ids, "@" in Vertex's model versions).
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
_REFUSED = re.compile(r"[\x00-\x1f\x7f\\/?#]")
_REFUSED_ALLOWING_SLASH = re.compile(r"[\x00-\x1f\x7f\\?#]")


@lru_cache(maxsize=4096)
def join(base: str, path: str, query: str = "") -> str:
    """``base`` with ``path`` (already escaped, starting with "/") appended to its path; its
    query string is kept, ``query`` (already encoded) added after it; a fragment dropped."""
    parts = urlsplit(base)
    merged = f"{parts.query}&{query}" if parts.query and query else parts.query or query
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, merged, ""))


def with_path(base: str, path: str) -> str:
    """``base`` with its path replaced (its query string kept)."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def path_of(base: str) -> str:
    """The path of ``base`` without trailing slashes (to test what it already names)."""
    return urlsplit(base).path.rstrip("/")


def segment(value: str, what: str = "model name", *, allow_slash: bool = False) -> str:
    """``value`` as one percent-encoded path segment. Raises InvalidRequest (400) for an empty
    name, "." or "..", a control character, a backslash, "?" or "#", and "/" unless
    ``allow_slash`` (then it is encoded as %2F: AWS ARNs are one segment)."""
    refused = _REFUSED_ALLOWING_SLASH if allow_slash else _REFUSED
    if not value or value in (".", "..") or refused.search(value):
        raise InvalidRequest(
            f"The {what} {value!r} cannot be sent upstream: it holds path or control characters.",
            param="model",
            code="invalid_model_name",
        )
    return quote(value, safe=_SEGMENT_SAFE)
