"""Incremental decoder for the binary ``application/vnd.amazon.eventstream`` framing that
ConverseStream answers with.

Each message is: total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes,
headers, payload, CRC32 of everything before it. A header is a 1-byte name length, the name,
a 1-byte value type and a typed value. Both checksums are verified.
https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html
https://docs.aws.amazon.com/lexv2/latest/dg/event-stream-encoding.html

Written here rather than reusing botocore's buffer: it is small, keeps one bytearray per stream,
reports framing errors with our own exception, and has no private API to follow across
botocore releases.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass

HeaderValue = bool | int | bytes | str | uuid.UUID

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_OVERHEAD = 16  # prelude (8) + prelude CRC (4) + message CRC (4)
# The framing allows up to 16 MiB per message; more means a corrupt length field.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Fixed-width integer header value types: type id -> (struct format, byte width).
_INT_TYPES = {2: (">b", 1), 3: (">h", 2), 4: (">i", 4), 5: (">q", 8), 8: (">q", 8)}


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad length, checksum or header)."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


class EventStreamDecoder:
    """Fed arbitrary byte slices, returns the complete messages they finish."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[EventMessage]:
        buf = self._buf
        buf += data
        out: list[EventMessage] = []
        pos = 0
        while len(buf) - pos >= _PRELUDE_LEN:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(buf, pos)
            if zlib.crc32(buf[pos : pos + 8]) != prelude_crc:
                raise EventStreamError("event stream prelude checksum mismatch")
            if total < _OVERHEAD or total > MAX_MESSAGE_BYTES or headers_len > total - _OVERHEAD:
                raise EventStreamError(f"invalid event stream message length {total}")
            if len(buf) - pos < total:
                break
            end = pos + total
            (message_crc,) = struct.unpack_from(">I", buf, end - 4)
            if zlib.crc32(buf[pos : end - 4]) != message_crc:
                raise EventStreamError("event stream message checksum mismatch")
            headers_start = pos + _PRELUDE_LEN
            headers = _parse_headers(bytes(buf[headers_start : headers_start + headers_len]))
            out.append(EventMessage(headers, bytes(buf[headers_start + headers_len : end - 4])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    def pending(self) -> int:
        """Bytes buffered that do not yet form a complete message."""
        return len(self._buf)


def _parse_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    size = len(data)
    try:
        while pos < size:
            name_len = data[pos]
            name = data[pos + 1 : pos + 1 + name_len].decode("utf-8")
            pos += 1 + name_len
            kind = data[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _INT_TYPES:
                fmt, width = _INT_TYPES[kind]
                if pos + width > size:
                    raise EventStreamError("truncated event stream header")
                (value,) = struct.unpack_from(fmt, data, pos)
                pos += width
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, pos)
                raw = data[pos + 2 : pos + 2 + length]
                if len(raw) != length:
                    raise EventStreamError("truncated event stream header")
                value = raw.decode("utf-8") if kind == 7 else raw
                pos += 2 + length
            elif kind == 9:
                if pos + 16 > size:
                    raise EventStreamError("truncated event stream header")
                value = uuid.UUID(bytes=data[pos : pos + 16])
                pos += 16
            else:
                raise EventStreamError(f"unknown event stream header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError("malformed event stream header") from exc
    return headers
