"""The stream of an OpenAI-format upstream: relayed to OpenAI-format clients as bytes, parsed
only where a read holds the usage chunk, an error or the end; decoded into chunks for others.
https://platform.openai.com/docs/api-reference/chat-streaming
"""

from __future__ import annotations

import orjson

from apps.core.errors import UpstreamError, UpstreamUnavailable
from apps.providers.errors import error_from_openai_body
from apps.providers.schemas import StreamChunk, Usage
from apps.providers.sse import SSEEvent, SSEParser


def _has_usage(data: bytes, end: int) -> bool:
    """Whether ``data[:end]`` holds a usage object (not ``"usage":null``, which every chunk of
    a stream carries when usage is requested)."""
    return data.count(b'"usage"', 0, end) != data.count(b'"usage":null', 0, end)


class OpenAIStreamDecoder:
    """Relays OpenAI chunks as bytes; parses only the chunks that carry usage or an error."""

    __slots__ = (
        "_done",
        "_error",
        "_finished",
        "_last",
        "_parser",
        "_provider",
        "usage",
        "usage_relayed",
    )

    def __init__(self, provider: str) -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._done = False
        self._finished = False  # a chunk carried a finish_reason
        # An error event is raised on the call after the one that read it, so the chunks
        # that came before it in the same read still reach the client.
        self._error: UpstreamError | None = None
        self.usage: Usage | None = None
        # For relay(): the last bytes sent, and whether the usage chunk went to the client.
        self._last = b""
        self.usage_relayed = False

    def feed(self, data: bytes) -> list[StreamChunk]:
        if self._error is not None:
            raise self._error
        return self._chunks(self._parser.feed(data))

    def finish(self) -> list[StreamChunk]:
        """Flush; raises UpstreamUnavailable when the upstream stopped before the answer was
        complete (neither ``[DONE]`` nor a finish_reason), so the client never mistakes a cut
        stream for a whole one."""
        if self._error is not None:
            raise self._error
        chunks = self._chunks(self._parser.finish())
        if self._error is not None:
            raise self._error
        if not self._done and not self._finished:
            raise UpstreamUnavailable(
                f"{self._provider} error: the stream ended before the answer was complete."
            )
        return chunks

    @property
    def done(self) -> bool:
        """The upstream sent ``[DONE]``: nothing after it is relayed."""
        return self._done

    def relay(self, data: bytes, include_usage: bool) -> bytes:
        """The bytes to send as they are to a client speaking OpenAI's format.

        The leading run of whole, ordinary chunk events in a read (usually all of it) is
        forwarded untouched, without parsing; what follows it (the usage chunk, ``[DONE]``, a
        partial event) goes through the event parser. A read that holds an error, a carriage
        return, or a usage object before its tail, or that continues a partial event, is parsed
        whole. The usage chunk is dropped unless the client asked for it; ``[DONE]`` is left to
        the gateway. Each check is one pass of a C search over the read: this runs for every
        read of every stream.
        """
        if self._error is not None:
            raise self._error
        plain = self._parser.idle and b"\r" not in data and b'"error"' not in data
        cut = self._ordinary_prefix(data) if plain else 0
        if not cut:
            return self._encode(self.feed(data), include_usage)
        head = data if cut == len(data) else data[:cut]
        # A finish_reason sits in the last chunks of a stream, where rfind starts looking.
        if not self._finished and head.rfind(b'"finish_reason":"') >= 0:
            self._finished = True
        self._last = head
        if cut == len(data):
            return data
        return head + self._encode(self.feed(data[cut:]), include_usage)

    def _ordinary_prefix(self, data: bytes) -> int:
        """Length of the leading run of whole ordinary events in ``data`` (0 when unsure).

        Walks back from the end over the events that need parsing (a usage object,
        ``[DONE]``, a partial event), then checks that none is left in the run before them.
        """
        end = len(data)
        if not data.endswith(b"\n\n"):
            end = data.rfind(b"\n\n") + 2
            if end <= 1:
                return 0
        while end > 0:
            boundary = data.rfind(b"\n\n", 0, end - 2)
            start = boundary + 2 if boundary >= 0 else 0
            event = data[start:end]
            if b"[DONE]" in event or _has_usage(event, len(event)):
                end = start
            else:
                break
        if not end:
            return 0
        if data.find(b"[DONE]", 0, end) >= 0 or _has_usage(data, end):
            return 0
        return end

    def finish_relay(self, include_usage: bool) -> bytes:
        """Like finish(), for relay()."""
        return self._encode(self.finish(), include_usage)

    def _encode(self, chunks: list[StreamChunk], include_usage: bool) -> bytes:
        out = []
        for chunk in chunks:
            data = chunk.data  # parsed only when it carries usage
            if data is not None and data.get("choices") == [] and data.get("usage"):
                if not include_usage:
                    continue
                self.usage_relayed = True
            out.append(b"data: " + chunk.payload() + b"\n\n")
        if out:
            self._last = out[-1]
        return b"".join(out)

    def last_chunk(self) -> StreamChunk | None:
        """The last chunk relayed (for the id and model of a usage chunk made afterwards)."""
        block = self._last.rstrip()
        if not block:
            return None
        payload = block.rsplit(b"\n\n", 1)[-1]
        if payload.startswith(b"data:"):
            payload = payload[5:].lstrip()
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        return StreamChunk(data=data) if isinstance(data, dict) else None

    def _chunks(self, events: list[SSEEvent]) -> list[StreamChunk]:
        out: list[StreamChunk] = []
        for event in events:
            payload = event.data
            if self._done or not payload:
                continue
            if payload == b"[DONE]":
                self._done = True
                continue
            chunk = StreamChunk(raw=payload)
            if not self._finished and b'"finish_reason":"' in payload:
                self._finished = True
            # Chunks carry '"usage":null' when usage is requested: only the real usage
            # chunk and error chunks are worth parsing.
            if b'"error"' in payload or (b'"usage"' in payload and b'"usage":null' not in payload):
                try:
                    data = chunk.json()
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(data, dict):
                    continue
                if isinstance(data.get("error"), dict):
                    self._error = error_from_openai_body(self._provider, 502, payload, {})
                    if not out:
                        raise self._error
                    return out
                usage = Usage.from_openai(data.get("usage"))
                if usage is not None:
                    self.usage = usage
            out.append(chunk)
        return out
