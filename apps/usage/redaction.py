"""Secrets out of stored request and response bodies: values under secret-looking names are
replaced, and key-shaped strings anywhere are masked."""

from __future__ import annotations

import re
from typing import Any

import orjson

MASK = "[redacted]"
_SECRET_NAME = re.compile(
    r"(api[_-]?key|secret|password|passwd|token|authorization|credential|private[_-]?key)",
    re.IGNORECASE,
)
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*.]{6,}|AKIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_\-]{20,})")


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_NAME.search(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _KEYLIKE.sub(MASK, value)
    return value


def stored_text(value: Any, limit: int) -> str:
    """``value`` (a parsed body, or raw JSON bytes) redacted, as JSON text of at most
    ``limit`` characters (NUL removed: the text column cannot hold it)."""
    if isinstance(value, bytes | bytearray):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            text = _KEYLIKE.sub(MASK, bytes(value).decode("utf-8", "replace"))
            return text.replace("\x00", "")[:limit]
    try:
        text = orjson.dumps(redact(value)).decode()
    except TypeError:
        text = str(redact(value))
    return text.replace("\\u0000", "").replace("\x00", "")[:limit]
