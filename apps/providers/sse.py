"""Incremental Server-Sent Events parser (https://html.spec.whatwg.org/multipage/server-sent-events.html).

Fed arbitrary byte slices, it returns complete events; it copes with events, lines and UTF-8
characters split anywhere, CRLF/CR/LF line ends, comments and multi-line data.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.errors import UpstreamProtocolError
from apps.providers.schemas import StreamChunk


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: bytes


# The largest event the parser holds: past it the stream is refused (an upstream sending one
# event without end would otherwise grow the buffer without bound). Generous: an event with an
# inline image in base64 is a few MB.
MAX_EVENT_BYTES = 32 * 1024 * 1024


class SSEParser:
    """Linear in the bytes fed, however they are split: an unfinished event is kept as a list
    of pieces, joined once when its end arrives; only the new piece is searched for it."""

    __slots__ = ("_cr", "_parts", "_size", "max_event_bytes")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._cr = False
        self.max_event_bytes = max_event_bytes

    @property
    def idle(self) -> bool:
        """Nothing is buffered: the next byte starts a new event."""
        return not self._parts and not self._cr

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self.max_event_bytes:
            self._parts.clear()
            self._size = 0
            raise UpstreamProtocolError(
                f"the upstream sent a stream event over {self.max_event_bytes} bytes."
            )
        self._parts.append(piece)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:  # must not forget a CR that ended the previous piece
            return []
        if b"\r" in chunk or self._cr:
            if self._cr and chunk.startswith(b"\n"):
                chunk = chunk[1:]
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return []
        parts = self._parts
        if b"\n\n" not in chunk and not (
            parts and parts[-1].endswith(b"\n") and chunk.startswith(b"\n")
        ):
            self._keep(chunk)
            return []
        if parts:
            parts.append(chunk)
            buf = b"".join(parts)
            parts.clear()
            self._size = 0
        else:
            buf = chunk
        *blocks, rest = buf.split(b"\n\n")
        if rest:
            self._keep(rest)
        events = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[SSEEvent]:
        """Dispatch a final event that was not followed by a blank line."""
        block = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        event = _parse_block(block.rstrip(b"\n")) if block.strip() else None
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    # Fast path: the common single ``data: ...`` line.
    if block.startswith(b"data: ") and b"\n" not in block:
        return SSEEvent(None, block[6:])
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data and event is None:
        return None
    return SSEEvent(event, b"\n".join(data))


class SSEData:
    """The ``data`` payloads of an OpenAI-style event stream, in order, up to ``[DONE]``:
    events without data are skipped, and nothing after ``[DONE]`` is returned."""

    __slots__ = ("_parser", "done")

    def __init__(self) -> None:
        self._parser = SSEParser()
        self.done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        return self._payloads(self._parser.feed(chunk))

    def finish(self) -> list[bytes]:
        return self._payloads(self._parser.finish())

    def _payloads(self, events: list[SSEEvent]) -> list[bytes]:
        out = []
        for event in events:
            if self.done:
                break
            payload = event.data.strip()
            if payload == b"[DONE]":
                self.done = True
            elif payload:
                out.append(payload)
        return out


class SSEDataDecoder:
    """Base of the stream decoders of OpenAI-style event streams: ``feed`` and ``finish`` hand
    the payloads (up to ``[DONE]``) to ``_chunks``, which subclasses write."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = SSEData()

    def feed(self, data: bytes) -> list[StreamChunk]:
        return self._chunks(self._data.feed(data))

    def finish(self) -> list[StreamChunk]:
        return self._chunks(self._data.finish())

    def _chunks(self, payloads: list[bytes]) -> list[StreamChunk]:
        raise NotImplementedError
