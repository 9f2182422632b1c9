"""Structured logs: JSON lines carrying the request id of the call being served."""

from __future__ import annotations

import asyncio
import logging

import orjson

from apps.core.logs import REQUEST_ID, JsonFormatter, RequestIdFilter


def _record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.getLogger("t").makeRecord(
        "t", logging.WARNING, __file__, 1, msg, args or ("world",), None, extra=extra or None
    )
    RequestIdFilter().filter(record)
    return record


def test_a_record_carries_the_request_id_of_its_call():
    async def serve(rid: str) -> str:
        REQUEST_ID.set(rid)
        await asyncio.sleep(0)
        return _record().request_id  # type: ignore[attr-defined]

    async def two_calls() -> list[str]:
        return list(await asyncio.gather(serve("req-a"), serve("req-b")))

    assert asyncio.run(two_calls()) == ["req-a", "req-b"]
    assert _record().request_id == ""  # type: ignore[attr-defined]


def test_json_lines_hold_message_level_request_id_and_extra_fields():
    token = REQUEST_ID.set("req-1")
    try:
        line = JsonFormatter().format(_record(model_group="gpt", status_code=200))
    finally:
        REQUEST_ID.reset(token)
    entry = orjson.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING" and entry["logger"] == "t"
    assert entry["request_id"] == "req-1"
    assert (entry["model_group"], entry["status_code"]) == ("gpt", 200)
    assert entry["time"].endswith("+00:00")


def test_an_exception_is_kept_in_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = orjson.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
