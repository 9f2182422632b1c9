"""Incremental Server-Sent Events parser (https://html.spec.whatwg.org/multipage/server-sent-events.html).

Fed arbitrary byte slices, it returns complete events; it copes with events, lines and UTF-8
characters split anywhere, CRLF/CR/LF line ends, comments and multi-line data.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.providers.schemas import StreamChunk


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: bytes


class SSEParser:
    __slots__ = ("_buf", "_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._cr = False

    @property
    def idle(self) -> bool:
        """Nothing is buffered: the next byte starts a new event."""
        return not self._buf and not self._cr

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if b"\r" in chunk or self._cr:
            if self._cr and chunk.startswith(b"\n"):
                chunk = chunk[1:]
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        if b"\n\n" not in buf:
            self._buf = buf
            return []
        *blocks, rest = buf.split(b"\n\n")
        self._buf = rest
        events = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[SSEEvent]:
        """Dispatch a final event that was not followed by a blank line."""
        block, self._buf = self._buf, b""
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
