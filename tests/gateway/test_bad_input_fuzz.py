"""Property: whatever a client sends to a POST endpoint, the answer is a 200 or a 400 in the
OpenAI error shape, never a 5xx or a dropped connection; a 400 is never forwarded upstream;
every authenticated request leaves exactly one usage row; the usage writer never gets stuck.

Hypothesis drives real HTTP requests through the running gateway to the fake upstream.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apps.usage.models import UsageLog
from apps.usage.writer import writer
from tests.gateway.helpers import E2E, HELLO, usage_rows

pytestmark = E2E

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
    database=None,  # nothing written into the checkout; failures print their example
)

VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt", "messages": HELLO},
    "/v1/completions": {"model": "gpt", "prompt": "hello"},
    "/v1/embeddings": {"model": "gpt", "input": "hello"},
    "/v1/moderations": {"model": "gpt", "input": "hello"},
}
ENDPOINTS = list(VALID)

# Strings that have broken gateways before: control characters (headers, log lines), NUL
# (PostgreSQL text), separators, non-Latin-1 text, a very long one.
TRICKY = ["\x00", "a\nb", "\r\n", "x\x7f", "\t", "é", "模型", "💥", "\u2028", " ", "x" * 5000]
# JSON values orjson can carry unchanged: integers within 64 bits (orjson reads bigger ones as
# floats), finite floats.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(TRICKY)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_obj(value: Any) -> bool:
    return isinstance(value, dict)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


# Fields each endpoint checks, with the JSON types it accepts for them (None = absent).
SAMPLING: dict[str, Callable[[Any], bool]] = {
    "temperature": _is_number,
    "top_p": _is_number,
    "presence_penalty": _is_number,
    "frequency_penalty": _is_number,
    "n": _is_int,
    "max_tokens": _is_int,
    "max_completion_tokens": _is_int,
    "seed": _is_int,
    "stream": _is_bool,
    "user": _is_str,
    "metadata": _is_obj,
    "logit_bias": _is_obj,
    "extra_body": _is_obj,
    "stop": lambda v: _is_str(v) or _is_list(v),
    "stream_options": _is_obj,
    "drop_params": _is_bool,
}
KNOWN: dict[str, dict[str, Callable[[Any], bool]]] = {
    "/v1/chat/completions": {
        "model": _is_str,
        "messages": _is_list,
        **SAMPLING,
        "tools": _is_list,
        "tool_choice": lambda v: _is_str(v) or _is_obj(v),
        "response_format": _is_obj,
        "parallel_tool_calls": _is_bool,
        "logprobs": _is_bool,
        "top_logprobs": _is_int,
    },
    "/v1/completions": {
        "model": _is_str,
        "prompt": lambda v: _is_str(v) or _is_list(v),
        **SAMPLING,
        "best_of": _is_int,
        "logprobs": _is_int,
        "echo": _is_bool,
    },
    "/v1/embeddings": {
        "model": _is_str,
        "input": lambda v: _is_str(v) or _is_list(v),
        "encoding_format": _is_str,
        "dimensions": _is_int,
        "user": _is_str,
        "metadata": _is_obj,
    },
    "/v1/moderations": {
        "model": _is_str,
        "input": lambda v: _is_str(v) or _is_list(v),
        "metadata": _is_obj,
    },
}


class Probe:
    """Sends bodies and checks each answer; counts the requests that reached auth."""

    def __init__(self, http: Any, fake: Any) -> None:
        self.http = http
        self.fake = fake
        self.authenticated = 0

    def post(self, path: str, raw: bytes) -> Any:
        before = len(self.fake.requests)
        response = self.http.post(path, content=raw, headers={"content-type": "application/json"})
        self.authenticated += 1
        # 404 only for a model name the gateway does not serve.
        assert response.status_code in (200, 400, 404), (response.status_code, raw[:300])
        if response.status_code != 200:
            error = orjson.loads(response.content)["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "invalid_request_error"
            assert isinstance(error["message"], str) and error["message"]
            if response.status_code == 404:
                assert error["code"] == "model_not_found"
            assert len(self.fake.requests) == before, "a rejected body was sent upstream"
        return response

    def bad(self, path: str, raw: bytes) -> dict[str, Any]:
        response = self.post(path, raw)
        assert response.status_code == 400, raw[:300]
        return dict(orjson.loads(response.content)["error"])

    def finish(self, gateway: Any) -> None:
        rows = usage_rows(gateway, self.authenticated, timeout=15)
        assert {r.status_code for r in rows} <= {200, 400, 404}
        assert writer.pending == 0


@pytest.fixture
def probe(gateway_server, gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    return Probe(gateway_http, fake_openai)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_non_object_roots_are_400(gateway_server, probe, path):
    @FUZZ
    @given(root=json_values.filter(lambda v: not isinstance(v, dict)))
    def check(root: Any) -> None:
        assert probe.bad(path, orjson.dumps(root))["code"] == "invalid_json"

    check()
    probe.finish(gateway_server)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_types_for_known_fields_are_400_naming_the_field(gateway_server, probe, path):
    fields = KNOWN[path]

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(fields)))
        value = data.draw(json_values)
        assume(value is not None and not fields[name](value))
        error = probe.bad(path, orjson.dumps({**VALID[path], name: value}))
        assert error["param"] is not None and error["param"].split(".")[0].split("[")[0] == name

    check()
    probe.finish(gateway_server)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_arbitrary_values_for_known_fields_never_fail_the_gateway(gateway_server, probe, path):
    fields = sorted(KNOWN[path])

    @FUZZ
    @given(values=st.dictionaries(st.sampled_from(fields), json_values, min_size=1, max_size=3))
    def check(values: dict[str, Any]) -> None:
        probe.post(path, orjson.dumps({**VALID[path], **values}))

    check()
    probe.finish(gateway_server)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_arbitrary_objects_never_fail_the_gateway(gateway_server, probe, path):
    @FUZZ
    @given(body=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    def check(body: dict[str, Any]) -> None:
        probe.post(path, orjson.dumps(body))

    check()
    probe.finish(gateway_server)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_unknown_fields_are_forwarded_untouched(gateway_server, probe, fake_openai, path):
    @FUZZ
    @given(extra=st.dictionaries(st.text(max_size=8).map(lambda k: "x_" + k), json_values))
    def check(extra: dict[str, Any]) -> None:
        response = probe.post(path, orjson.dumps({**VALID[path], **extra}))
        assert response.status_code == 200
        sent = fake_openai.requests[-1].body
        for key, value in extra.items():
            assert sent[key] == value

    check()
    probe.finish(gateway_server)


def _literal_bodies() -> st.SearchStrategy[bytes]:
    """Bodies that are not JSON orjson accepts: NaN/Infinity, overflowing numbers, bad UTF-8,
    truncation, nesting past the parser's limit."""
    literal = st.sampled_from(
        [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"1" * 400, b"nan", b"inf"]
    )
    field = st.sampled_from(["temperature", "max_tokens", "x_field", "model", "input"])
    with_literal = st.builds(
        lambda f, lit: b'{"model": "gpt", "' + f.encode() + b'": ' + lit + b"}", field, literal
    )
    bad_utf8 = st.builds(
        lambda junk: (
            b'{"model": "gpt", "messages": [{"role": "user", "content": "' + junk + b'"}]}'
        ),
        st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80abc"]),
    )
    lone_surrogate = st.just(b'{"model": "gpt", "input": "\\udc00"}')
    too_deep = st.integers(min_value=1025, max_value=3000).map(
        lambda n: b'{"model": "gpt", "x": ' + b"[" * n + b"]" * n + b"}"
    )
    truncated = st.builds(
        lambda body, cut: body[: max(1, int(len(body) * cut))],
        st.sampled_from([orjson.dumps(v) for v in VALID.values()]),
        st.floats(min_value=0.0, max_value=0.95),
    )
    return with_literal | bad_utf8 | lone_surrogate | too_deep | truncated


@pytest.mark.parametrize("path", ENDPOINTS)
def test_malformed_json_bytes_are_400(gateway_server, probe, path):
    @FUZZ
    @given(raw=_literal_bodies())
    def check(raw: bytes) -> None:
        assert probe.bad(path, raw)["code"] == "invalid_json"

    check()
    probe.finish(gateway_server)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_deep_nesting_the_parser_accepts_never_fails(gateway_server, probe, path):
    @settings(FUZZ, max_examples=25)
    @given(depth=st.integers(min_value=1, max_value=1024), where=st.sampled_from(["x", "metadata"]))
    def check(depth: int, where: str) -> None:
        nested = b"{}" if where == "metadata" else b"1"
        for _ in range(depth - 1):
            nested = b'{"a": ' + nested + b"}" if where == "metadata" else b"[" + nested + b"]"
        base = orjson.dumps(VALID[path])[:-1]
        probe.post(path, base + b', "' + where.encode() + b'": ' + nested + b"}")

    check()
    probe.finish(gateway_server)


@pytest.mark.parametrize("path", [p for p in ENDPOINTS if p != "/v1/moderations"])
def test_enormous_numbers_in_known_fields_are_400(gateway_server, probe, path):
    numeric = [n for n, ok in KNOWN[path].items() if ok in (_is_number, _is_int)]

    @FUZZ
    @given(
        name=st.sampled_from(numeric),
        value=st.floats(min_value=1e18, allow_infinity=False)
        | st.integers(min_value=2**53 + 1, max_value=2**63),
        sign=st.sampled_from([1, -1]),
    )
    def check(name: str, value: float, sign: int) -> None:
        assume(math.isfinite(value))
        probe.bad(path, orjson.dumps({**VALID[path], name: sign * value}))

    check()
    probe.finish(gateway_server)


def test_usage_rows_count_matches_requests_across_endpoints(gateway_server, probe):
    for path, body in VALID.items():
        probe.post(path, orjson.dumps(body))
        probe.post(path, b"{")
    probe.finish(gateway_server)
    assert UsageLog.objects.filter(status_code=400).count() == 4
