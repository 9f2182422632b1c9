"""Errors in the OpenAI shape with the right status: the client's mistakes (400/404/413-style
limits) and the upstream's failures (mapped, never a bare 500). Fallback between deployments
is in test_fallback.py, credential scrubbing end to end in test_credential_leaks.py.

Status -> SDK class: https://github.com/openai/openai-python#handling-errors
"""

from __future__ import annotations

import openai
import pytest
from django.test import override_settings

from tests.conftest import UPSTREAM_KEY
from tests.fakes.server import free_port
from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, usage_rows

pytestmark = E2E


def _post_raw(client, body: bytes, **headers: str):
    return client.post(CHAT, content=body, headers={"content-type": "application/json", **headers})


# --- the client's mistakes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b'{"model": "gpt", "messages": [}', "invalid_json"),
        (b"[]", "invalid_json"),
        (b'"a string"', "invalid_json"),
        (b"null", "invalid_json"),
        (b"42", "invalid_json"),
        (b'{"model": "gpt", "messages": [], "temperature": NaN}', "invalid_json"),
        (b'{"model": "gpt", "temperature": Infinity}', "invalid_json"),
        (b'{"model": "gpt", "temperature": 1e999}', "invalid_json"),
        (b'{"model": "gpt\xff"}', "invalid_json"),
        (b'{"model": "\\ud800"}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    ],
)
def test_unparseable_body_is_400(
    gateway_server, gateway_http, openai_upstream, fake_openai, raw, code
):
    openai_upstream("gpt", "gpt-4o-mini")
    response = _post_raw(gateway_http, raw)
    assert response.status_code == 400
    error = openai_error(response)
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
    assert fake_openai.requests == []
    # Authenticated, so the failure is logged (and nothing is charged).
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.error_type, row.cost) == (400, code, 0)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": HELLO}, "model", "missing_required_parameter"),
        ({"model": 5, "messages": HELLO}, "model", "invalid_type"),
        ({"model": "", "messages": HELLO}, "model", "invalid_value"),
        ({"model": "x" * 600, "messages": HELLO}, "model", "invalid_value"),
        ({"model": "gpt"}, "messages", "missing_required_parameter"),
        ({"model": "gpt", "messages": "hi"}, "messages", "invalid_type"),
        ({"model": "gpt", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt", "messages": ["hi"]}, "messages[0]", "invalid_type"),
        ({"model": "gpt", "messages": [{"content": "hi"}]}, "messages[0].role", None),
        (
            {"model": "gpt", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            None,
        ),
        ({"model": "gpt", "messages": [{"role": 1, "content": "x"}]}, "messages[0].role", None),
        ({"model": "gpt", "messages": [{"role": "user"}]}, "messages[0].content", None),
        (
            {"model": "gpt", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            None,
        ),
        (
            {"model": "gpt", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
            None,
        ),
        (
            {"model": "gpt", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            None,
        ),
        ({"model": "gpt", "messages": HELLO, "temperature": "hot"}, "temperature", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "temperature": 3}, "temperature", "above_max_value"),
        ({"model": "gpt", "messages": HELLO, "top_p": -1}, "top_p", "below_min_value"),
        ({"model": "gpt", "messages": HELLO, "n": 1.5}, "n", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "max_tokens": 10**30}, "max_tokens", None),
        ({"model": "gpt", "messages": HELLO, "stream": "yes"}, "stream", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "stream_options": 1}, "stream_options", None),
        ({"model": "gpt", "messages": HELLO, "metadata": "x"}, "metadata", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "user": 3}, "user", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "stop": [1]}, "stop", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "tools": {}}, "tools", "invalid_type"),
        (
            {"model": "gpt", "messages": HELLO, "tools": [{"type": "function"}]},
            "tools[0].function",
            None,
        ),
        ({"model": "gpt", "messages": HELLO, "tool_choice": 1}, "tool_choice", "invalid_type"),
        ({"model": "gpt", "messages": HELLO, "drop_params": "yes"}, "drop_params", "invalid_type"),
    ],
)
def test_invalid_chat_body_is_400_naming_the_field(
    gateway_http, openai_upstream, fake_openai, body, param, code
):
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 400, response.text
    error = openai_error(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert fake_openai.requests == []


def test_invalid_body_raises_the_sdk_bad_request_error(openai_upstream, openai_client):
    openai_upstream("gpt", "gpt-4o-mini")
    with pytest.raises(openai.BadRequestError) as info:
        openai_client().chat.completions.create(model="gpt", messages=[])
    assert info.value.param == "messages"


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_the_size_limit_is_400(gateway_http, openai_upstream, fake_openai, chunked):
    openai_upstream("gpt", "gpt-4o-mini")
    body = b'{"model": "gpt", "messages": [{"role": "user", "content": "' + b"a" * 5000 + b'"}]}'
    content = iter([body[:100], body[100:]]) if chunked else body
    with override_settings(GATEWAY_MAX_BODY_BYTES=2000):
        response = gateway_http.post(
            CHAT, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        error = openai_error(response)
        assert error["code"] == "request_too_large"
        assert "2000" in error["message"]
        # Under the limit still passes.
        small = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
        assert small.status_code == 200
    assert len(fake_openai.requests) == 1


def test_unknown_model_is_404(gateway_server, openai_upstream, openai_client, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    with pytest.raises(openai.NotFoundError) as info:
        openai_client().chat.completions.create(model="gpt-5-nonexistent", messages=HELLO)
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"
    assert fake_openai.requests == []
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.model_group, row.error_type) == (
        404,
        "gpt-5-nonexistent",
        "model_not_found",
    )


def test_get_on_chat_completions_is_405(gateway_http):
    response = gateway_http.get(CHAT)
    assert response.status_code == 405
    assert openai_error(response)["code"] == "method_not_allowed"


# --- the upstream's failures ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "status", "exc", "kind"),
    [
        ("error-400", 400, openai.BadRequestError, "invalid_request_error"),
        ("error-401", 401, openai.AuthenticationError, "invalid_request_error"),
        ("error-403", 403, openai.PermissionDeniedError, "permission_error"),
        ("error-404", 404, openai.NotFoundError, "invalid_request_error"),
        ("error-429", 429, openai.RateLimitError, "rate_limit_error"),
        ("error-500", 502, openai.InternalServerError, "server_error"),
        ("error-503", 503, openai.InternalServerError, "server_error"),
        ("html-error", 502, openai.InternalServerError, "api_error"),
    ],
)
def test_upstream_error_is_mapped_to_status_and_sdk_class(
    gateway_server, openai_upstream, openai_client, upstream, status, exc, kind
):
    openai_upstream("gpt", upstream)
    with pytest.raises(exc) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
    assert info.value.status_code == status
    assert info.value.type == kind
    assert info.value.body["message"].startswith("openai error: ")
    response = info.value.response
    assert response.headers["x-request-id"].startswith("req-")
    assert response.headers["x-litellm-model-group"] == "gpt"
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == status
    assert row.error_message.startswith("openai error: ")


def test_upstream_429_keeps_retry_after(openai_upstream, openai_client):
    openai_upstream("gpt", "error-429")
    with pytest.raises(openai.RateLimitError) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.code == "rate_limit_exceeded"


def test_upstream_html_error_body_becomes_a_readable_message(openai_upstream, gateway_http):
    openai_upstream("gpt", "html-error")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 502
    assert "502 Bad Gateway" in openai_error(response)["message"]


def test_upstream_success_that_is_not_json_is_502(openai_upstream, gateway_http):
    openai_upstream("gpt", "garbage")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    assert response.status_code == 502
    assert openai_error(response)["type"] == "api_error"


def test_upstream_timeout_is_504(gateway_server, openai_upstream, openai_client):
    openai_upstream("gpt", "slow-3000", timeout=0.3)
    with pytest.raises(openai.InternalServerError) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
    assert info.value.status_code == 504
    assert info.value.code == "upstream_timeout"
    assert "timed out" in info.value.message
    [row] = usage_rows(gateway_server, 1)
    assert (row.status_code, row.error_type) == (504, "upstream_timeout")


def test_upstream_timeout_before_the_first_stream_byte_is_504(openai_upstream, gateway_http):
    openai_upstream("gpt", "slow-3000", stream_timeout=0.3)
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO, "stream": True})
    assert response.status_code == 504
    assert openai_error(response)["code"] == "upstream_timeout"


@pytest.mark.parametrize("stream", [False, True])
def test_connection_refused_is_502(gateway_server, make_deployment, gateway_http, stream):
    make_deployment(
        "gpt",
        "openai",
        "gpt-4o-mini",
        api_base=f"http://127.0.0.1:{free_port()}/v1",
        api_key=UPSTREAM_KEY,
    )
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO, "stream": stream})
    assert response.status_code == 502
    error = openai_error(response)
    assert error["code"] == "upstream_connect_failed"
    assert "cannot connect to 127.0.0.1" in error["message"]
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 502


def test_connection_refused_raises_the_sdk_internal_server_error(make_deployment, openai_client):
    make_deployment("gpt", "openai", "x", api_base=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(openai.InternalServerError) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
    assert info.value.status_code == 502


# --- the client's model name in a header ----------------------------------------------------


@pytest.mark.parametrize("model", ["a\nb", "x\r\nx-injected: 1", "nul\x00", "del\x7f", "tab\tz"])
def test_model_name_with_control_characters_still_gets_an_answer(
    gateway_server, gateway_http, openai_upstream, model
):
    """The model group header repeats the client's model name: a newline in it used to make
    the server drop the connection without any answer."""
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.post(CHAT, json={"model": model, "messages": HELLO})
    assert response.status_code == 404
    assert openai_error(response)["code"] == "model_not_found"
    assert "x-injected" not in response.headers
    group = response.headers["x-litellm-model-group"]
    assert all(32 <= ord(c) != 127 for c in group)
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 404


@pytest.mark.parametrize("stream", [False, True])
def test_wildcard_group_serves_a_model_name_with_a_newline(
    gateway_http, openai_upstream, fake_openai, stream
):
    openai_upstream("wild/*", "*")
    body = {"model": "wild/a\nb", "messages": HELLO, "stream": stream}
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200
    assert response.headers["x-litellm-model-group"] == "wild/a b"
    assert fake_openai.requests[0].body["model"] == "a\nb"


def test_model_in_the_path_with_a_control_character_still_gets_an_answer(
    gateway_http, openai_upstream
):
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.post(
        "/v1/engines/a%7Fb%1B/chat/completions", json={"model": "x", "messages": HELLO}
    )
    assert response.status_code == 404
    assert openai_error(response)["code"] == "model_not_found"


# --- nesting --------------------------------------------------------------------------------


def _nested_body(field: str, levels: int) -> bytes:
    """A chat body whose ``field`` adds ``levels`` levels below the root object."""
    if field == "metadata":
        value = b"{}"
        for _ in range(levels - 1):
            value = b'{"a": ' + value + b"}"
    else:
        value = b"[" * levels + b"]" * levels
    return b'{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "%s": %s}' % (
        field.encode(),
        value,
    )


@pytest.mark.parametrize("field", ["x_vendor", "metadata"])
@pytest.mark.parametrize("levels", [128, 254, 600, 1023])
def test_body_nested_deeper_than_the_limit_is_400(
    gateway_server, gateway_http, openai_upstream, fake_openai, field, levels
):
    """orjson reads 1024 levels but writes 254: between the two, the body could not be sent
    upstream and the gateway answered 500 for a client's mistake."""
    openai_upstream("gpt", "gpt-4o-mini")
    response = _post_raw(gateway_http, _nested_body(field, levels))
    assert response.status_code == 400
    error = openai_error(response)
    assert error["code"] == "too_deeply_nested"
    assert "128" in error["message"]
    assert fake_openai.requests == []
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 400


@pytest.mark.parametrize("field", ["x_vendor", "metadata"])
def test_body_nested_up_to_the_limit_is_served(
    gateway_server, gateway_http, openai_upstream, fake_openai, field
):
    openai_upstream("gpt", "gpt-4o-mini")
    response = _post_raw(gateway_http, _nested_body(field, 127))
    assert response.status_code == 200
    assert len(fake_openai.requests) == 1
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 200


def test_many_messages_are_not_mistaken_for_nesting(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}] * 500
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": messages})
    assert response.status_code == 200
    assert len(fake_openai.requests[0].body["messages"]) == 500


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/images/generations", "/v1/models/gpt"])
def test_unknown_v1_path_is_a_404_in_openai_shape(gateway_http, path):
    """An API client used to get Django's HTML 404 page for a path the gateway does not serve."""
    response = gateway_http.post(path, json={})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    error = openai_error(response)
    assert (error["type"], error["code"]) == ("invalid_request_error", "not_found")
    assert path in error["message"]


def test_unknown_endpoint_raises_the_sdk_not_found_error(openai_upstream, openai_client):
    openai_upstream("gpt", "gpt-4o-mini")
    with pytest.raises(openai.NotFoundError) as info:
        openai_client().models.retrieve("gpt")
    assert info.value.code == "not_found"


def test_other_paths_still_reach_django(gateway_http):
    response = gateway_http.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/admin/"
