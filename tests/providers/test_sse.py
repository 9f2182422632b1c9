"""The event-stream reader: events split anywhere, every line ending, and OpenAI's
``data`` payloads up to ``[DONE]``."""

from __future__ import annotations

import pytest

from apps.providers.sse import SSEData, SSEEvent, SSEParser

STREAM = b'event: ping\ndata: {"a":1}\n\n: comment\n\ndata: two\ndata: lines\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_events_survive_any_split(size: int) -> None:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for start in range(0, len(STREAM), size):
        events += parser.feed(STREAM[start : start + size])
    events += parser.finish()
    assert events == [
        SSEEvent("ping", b'{"a":1}'),
        SSEEvent(None, b"two\nlines"),
        SSEEvent(None, b"[DONE]"),
    ]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_every_line_ending(newline: bytes) -> None:
    parser = SSEParser()
    raw = b"data: x" + newline + newline + b"data: y" + newline + newline
    assert [e.data for e in parser.feed(raw)] == [b"x", b"y"]


def test_a_last_event_without_a_blank_line_comes_with_finish() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert parser.finish() == [SSEEvent(None, b"tail")]


def test_data_payloads_end_at_done() -> None:
    data = SSEData()
    assert data.feed(b"data: 1\n\ndata: \n\ndata: 2\n\ndata: [DONE]\n\ndata: 3\n\n") == [
        b"1",
        b"2",
    ]
    assert data.done
    assert data.feed(b"data: 4\n\n") == []
    assert data.finish() == []
