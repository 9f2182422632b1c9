"""The event-stream reader: events split anywhere, every line ending, OpenAI's ``data``
payloads up to ``[DONE]``, linear time on an event that arrives in many pieces, and a cap on one
event's size."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.errors import UpstreamProtocolError
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


MIXED = (
    b'event: message_start\r\ndata: {"a":1}\r\n\r\n'
    b": a comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b'data: {"b":2}\r\r'
    b"event: ping\n\n"
    b"data: [DONE]\n\n"
    b"data: tail without end"
)
MIXED_EVENTS = [
    SSEEvent("message_start", b'{"a":1}'),
    SSEEvent(None, b"line one\nline two"),
    SSEEvent(None, b'{"b":2}'),
    SSEEvent("ping", b""),
    SSEEvent(None, b"[DONE]"),
    SSEEvent(None, b"tail without end"),
]


def parse(pieces: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.finish()


def test_whole_stream() -> None:
    assert parse([MIXED]) == MIXED_EVENTS


def test_byte_by_byte() -> None:
    assert parse([MIXED[n : n + 1] for n in range(len(MIXED))]) == MIXED_EVENTS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(MIXED)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(MIXED)]
    assert parse([MIXED[a:b] for a, b in itertools.pairwise(points)]) == MIXED_EVENTS


def test_idle_only_between_events() -> None:
    parser = SSEParser()
    assert parser.idle
    parser.feed(b"data: x\n")
    assert not parser.idle
    assert parser.feed(b"\n") == [SSEEvent(None, b"x")]
    assert parser.idle


def test_an_event_without_end_is_linear_not_quadratic() -> None:
    """Regression: every piece was joined onto the whole buffer and the buffer searched again,
    so a 40 MB event took 1.6 s and a 500 MB one over two minutes."""
    parser = SSEParser()
    piece = b"x" * 16384
    started = time.perf_counter()
    parser.feed(b"data: ")
    for _ in range(30 * 64):  # 30 MiB in 16 KiB pieces
        assert parser.feed(piece) == []
    [event] = parser.feed(b"\n\n")
    elapsed = time.perf_counter() - started
    assert len(event.data) == 30 * 1024 * 1024
    assert elapsed < 3.0, elapsed  # was over two minutes


def test_an_event_over_the_cap_is_refused() -> None:
    parser = SSEParser(max_event_bytes=1000)
    parser.feed(b"data: " + b"x" * 900)
    with pytest.raises(UpstreamProtocolError, match="over 1000 bytes"):
        parser.feed(b"y" * 200)
    assert parser.idle  # what was held is dropped
    assert parser.feed(b"data: ok\n\n") == [SSEEvent(None, b"ok")]
