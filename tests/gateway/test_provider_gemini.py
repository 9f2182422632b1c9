"""End to end: the official OpenAI SDK -> the gateway -> the fake Gemini API / Vertex AI."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import openai
import orjson
import pytest

from apps.usage.models import UsageLog
from tests.fakes import gemini as fake_gemini
from tests.fakes.server import BackgroundServer
from tests.leaks import secret

GEMINI_KEY = secret("gemini-test-key")
STATIC_TOKEN = secret("ya29.static-token")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


@dataclass
class GoogleUpstream:
    server: BackgroundServer
    fake: fake_gemini.FakeGemini
    service_account: dict[str, Any]


@pytest.fixture(scope="module")
def _gemini_server() -> Iterator[GoogleUpstream]:
    app, fake = fake_gemini.make_app(api_key=GEMINI_KEY)
    server = BackgroundServer(app)
    server.start()
    info, public_key = fake_gemini.generate_service_account(server.url + "/token")
    fake.public_key, fake.client_email = public_key, info["client_email"]
    yield GoogleUpstream(server, fake, info)
    server.stop()


@pytest.fixture
def fake(_gemini_server: GoogleUpstream) -> Any:
    upstream = _gemini_server.fake
    upstream.requests.clear()
    upstream.token_requests.clear()
    return upstream


@pytest.fixture
def gemini_group(
    _gemini_server: GoogleUpstream, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    """Route model group ``group`` to the fake Gemini API with upstream model ``model``."""
    server = _gemini_server.server

    def build(group: str = "gem", model: str = "gemini-2.5-flash", **fields: Any) -> Any:
        fields.setdefault("api_base", server.url + "/v1beta")
        fields.setdefault("api_key", GEMINI_KEY)
        return make_deployment(group, "gemini", model, **fields)

    return build


@pytest.fixture
def vertex_group(
    _gemini_server: GoogleUpstream, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    """Route ``group`` to the fake Vertex AI, authenticated with a service account."""
    from apps.core.secrets import encrypt

    server = _gemini_server.server
    credentials = orjson.dumps(_gemini_server.service_account).decode()

    def build(group: str = "vtx", model: str = "gemini-2.5-pro", **fields: Any) -> Any:
        fields.setdefault("api_base", server.url)
        fields.setdefault(
            "extra_params", {"vertex_project": "fake-project", "vertex_location": "us-east5"}
        )
        fields.setdefault("secret_params", {"vertex_credentials": encrypt(credentials)})
        return make_deployment(group, "vertex_ai", model, **fields)

    return build


def chat(client: openai.OpenAI, model: str, text: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def stream_text(stream: Any) -> tuple[str, list[Any]]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


# --- Gemini API -------------------------------------------------------------------------------


def test_text(gateway_server: Any, gemini_group: Any, openai_client: Any, fake: Any) -> None:
    gemini_group()
    reply = chat(openai_client(), "gem", "hello gemini", temperature=0.3, max_tokens=50)
    assert reply.choices[0].message.content == "hello gemini"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    recorded = fake.requests[-1]
    assert recorded.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == GEMINI_KEY
    assert recorded.body["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 50}
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.status_code == 200
    assert (row.prompt_tokens, row.completion_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )


def test_stream(gateway_server: Any, gemini_group: Any, openai_client: Any, fake: Any) -> None:
    gemini_group()
    stream = chat(
        openai_client(),
        "gem",
        "the quick brown fox — façade 🌍",
        stream=True,
        stream_options={"include_usage": True},
    )
    text, chunks = stream_text(stream)
    assert text == "the quick brown fox — façade 🌍"
    assert fake.requests[-1].path == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    gateway_server.flush_usage()
    assert UsageLog.objects.get().completion_tokens == chunks[-1].usage.completion_tokens


def test_tool_call_round_trip(
    gateway_server: Any, gemini_group: Any, openai_client: Any, fake: Any
) -> None:
    gemini_group()
    client = openai_client()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="gem", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"location": "Paris"}
    declared = fake.requests[-1].body["tools"][0]["functionDeclarations"][0]
    assert "additionalProperties" not in orjson.dumps(declared).decode()

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = client.chat.completions.create(model="gem", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == 'Tool result: [{"temp_c":21}]'
    replay = fake.requests[-1].body["contents"]
    assert replay[1]["parts"][0]["thoughtSignature"] == fake_gemini.SIGNATURE
    assert replay[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_streamed_tool_call(
    gateway_server: Any, gemini_group: Any, openai_client: Any, fake: Any
) -> None:
    gemini_group()
    stream = openai_client().chat.completions.create(
        model="gem",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.index, tc.function.name) for tc in calls] == [(0, "get_weather")]
    assert orjson.loads(calls[0].function.arguments) == {"location": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_blocked_prompt(gateway_server: Any, gemini_group: Any, openai_client: Any) -> None:
    gemini_group(model="blocked")
    reply = chat(openai_client(), "gem", "something bad")
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content == ""


@pytest.mark.parametrize(
    ("model", "exception", "status"),
    [
        ("error-400", openai.BadRequestError, 400),
        ("error-key", openai.AuthenticationError, 401),
        ("error-401", openai.AuthenticationError, 401),
        ("error-403", openai.PermissionDeniedError, 403),
        ("error-404", openai.NotFoundError, 404),
        ("error-429", openai.RateLimitError, 429),
        ("error-500", openai.InternalServerError, 502),
        ("error-503", openai.InternalServerError, 503),
        ("error-504", openai.InternalServerError, 504),
    ],
)
def test_errors(
    gateway_server: Any,
    gemini_group: Any,
    openai_client: Any,
    model: str,
    exception: type[openai.APIStatusError],
    status: int,
) -> None:
    gemini_group(model=model)
    with pytest.raises(exception) as info:
        chat(openai_client(), "gem", "hi")
    assert info.value.status_code == status
    assert GEMINI_KEY not in str(info.value.body)


def test_context_too_long(gateway_server: Any, gemini_group: Any, openai_client: Any) -> None:
    gemini_group(model="error-context")
    with pytest.raises(openai.BadRequestError) as info:
        chat(openai_client(), "gem", "a very long prompt")
    assert info.value.code == "context_length_exceeded"


def test_rate_limit_retry_after(gateway_server: Any, gemini_group: Any, openai_client: Any) -> None:
    gemini_group(model="error-429")
    with pytest.raises(openai.RateLimitError) as info:
        chat(openai_client(), "gem", "hi")
    assert info.value.response.headers.get("retry-after") == "7"


def test_wrong_upstream_key(gateway_server: Any, gemini_group: Any, openai_client: Any) -> None:
    gemini_group(api_key="not-the-key")
    with pytest.raises(openai.AuthenticationError) as info:
        chat(openai_client(), "gem", "hi")
    assert "not-the-key" not in str(info.value.body)


def test_midstream_error(gateway_server: Any, gemini_group: Any, openai_client: Any) -> None:
    gemini_group(model="stream-error")
    stream = chat(openai_client(), "gem", "first words", stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "first"


def test_embeddings(gateway_server: Any, gemini_group: Any, openai_client: Any, fake: Any) -> None:
    gemini_group("gem-embed", "gemini-embedding-001")
    client = openai_client()
    result = client.embeddings.create(model="gem-embed", input=["alpha", "beta"], dimensions=6)
    assert [len(d.embedding) for d in result.data] == [6, 6]
    # The SDK asked for base64; the vectors decode to the upstream's float32 values.
    expected = fake_gemini._vector("alpha", 6)
    decoded = struct.unpack("<6f", fake_gemini.float32(expected))
    assert result.data[0].embedding == pytest.approx(list(decoded))
    assert fake.requests[-1].path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert result.usage.prompt_tokens > 0
    floats = client.embeddings.create(model="gem-embed", input="alpha", encoding_format="float")
    assert floats.data[0].embedding[:6] == pytest.approx(fake_gemini._vector("alpha", 8)[:6])


# --- Vertex AI --------------------------------------------------------------------------------


def test_vertex_service_account(
    gateway_server: Any, vertex_group: Any, openai_client: Any, fake: Any
) -> None:
    vertex_group()
    client = openai_client()
    reply = chat(client, "vtx", "hello vertex")
    assert reply.choices[0].message.content == "hello vertex"
    text, _ = stream_text(chat(client, "vtx", "streamed vertex", stream=True))
    assert text == "streamed vertex"
    # One token exchange, cached for the second call; the fake verified its signature.
    assert len(fake.token_requests) == 1
    assert fake.token_requests[0].body["grant_type"] == fake_gemini.JWT_BEARER
    paths = [r.path for r in fake.requests]
    assert paths == [
        "/v1/projects/fake-project/locations/us-east5/publishers/google/models/"
        "gemini-2.5-pro:generateContent",
        "/v1/projects/fake-project/locations/us-east5/publishers/google/models/"
        "gemini-2.5-pro:streamGenerateContent?alt=sse",
    ]
    tokens = {r.headers["authorization"] for r in fake.requests}
    assert len(tokens) == 1 and tokens.pop()[len("Bearer ") :] in fake.issued_tokens


def test_vertex_refused_credentials(
    gateway_server: Any,
    vertex_group: Any,
    openai_client: Any,
    fake: Any,
    _gemini_server: GoogleUpstream,
) -> None:
    from apps.core.secrets import encrypt

    other, _ = fake_gemini.generate_service_account(_gemini_server.server.url + "/token")
    # Signed with a key the fake does not know, for the identity it does know.
    info = {**other, "client_email": fake.client_email}
    vertex_group(secret_params={"vertex_credentials": encrypt(orjson.dumps(info).decode())})
    with pytest.raises(openai.AuthenticationError):
        chat(openai_client(), "vtx", "hi")
    assert len(fake.token_requests) == 1
    assert fake.requests == []


def test_vertex_static_token_and_errors(
    gateway_server: Any, vertex_group: Any, openai_client: Any, fake: Any
) -> None:
    fake.static_tokens.add("ya29.static-token")
    vertex_group("vtx-static", api_key=STATIC_TOKEN, secret_params={})
    reply = chat(openai_client(), "vtx-static", "static")
    assert reply.choices[0].message.content == "static"
    assert fake.requests[-1].headers["authorization"] == "Bearer ya29.static-token"
    assert fake.token_requests == []
    vertex_group("vtx-bad", api_key="ya29.unknown", secret_params={})
    with pytest.raises(openai.AuthenticationError):
        chat(openai_client(), "vtx-bad", "hi")
    vertex_group("vtx-429", "error-429", api_key=STATIC_TOKEN, secret_params={})
    with pytest.raises(openai.RateLimitError):
        chat(openai_client(), "vtx-429", "hi")


def test_vertex_embeddings(
    gateway_server: Any, vertex_group: Any, openai_client: Any, fake: Any
) -> None:
    vertex_group("vtx-embed", "text-embedding-005")
    result = openai_client().embeddings.create(
        model="vtx-embed", input=["alpha"], encoding_format="float"
    )
    assert result.data[0].embedding == pytest.approx(fake_gemini._vector("alpha", 8))
    assert fake.requests[-1].path.endswith("/models/text-embedding-005:predict")
    assert result.usage.prompt_tokens == 2
