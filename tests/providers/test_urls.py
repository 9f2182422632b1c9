"""Upstream URLs of every provider: a query string in api_base stays a query string after the
appended path, and a model name the client chose (through a wildcard group) can neither leave
its path segment nor add a query to a request that carries the gateway's credentials."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from apps.core.errors import InvalidRequest
from apps.providers import urls
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, Op, Target

HOSTILE = [
    "../../v1/projects/other/secrets",
    "x/../../admin",
    "gemini-pro:generateContent?key=attacker&",
    "gemini-pro#frag",
    "..",
    ".",
    "a\r\nx-injected: 1",
    "a\x00b",
    "a\\..\\b",
    "",
]

AWS = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s", "aws_region_name": "r"}


def chat(stream: bool = False) -> CanonicalRequest:
    body = {"model": "group", "messages": [{"role": "user", "content": "Hi"}]}
    return CanonicalRequest(op=Op.CHAT, body=body, stream=stream)


def target(provider: str, model: str, **kwargs: Any) -> Target:
    params: dict[str, Any] = {}
    if provider == "vertex_ai":
        params = {"vertex_project": "p", "vertex_location": "us-central1"}
    elif provider == "bedrock":
        params = dict(AWS)
    defaults: dict[str, Any] = {
        "deployment_id": "d",
        "provider": provider,
        "model": model,
        "api_key": "k",
        "params": params,
        "api_version": "2024-10-21" if provider == "azure" else None,
    }
    if provider == "azure":
        defaults["api_base"] = "https://r.openai.azure.com"
    defaults.update(kwargs)
    return Target(**defaults)


def url_of(provider: str, model: str, stream: bool = False, **kwargs: Any) -> str:
    return str(
        get_provider(provider).build_request(chat(stream), target(provider, model, **kwargs)).url
    )


@pytest.mark.parametrize("provider", ["gemini", "vertex_ai", "azure"])
@pytest.mark.parametrize("model", HOSTILE)
def test_a_model_name_with_path_or_control_characters_is_refused(provider: str, model: str) -> None:
    """Regression: Gemini and Vertex put the model into the URL path unescaped."""
    with pytest.raises(InvalidRequest) as info:
        url_of(provider, model)
    assert info.value.http_status == 400 and info.value.code == "invalid_model_name"


@pytest.mark.parametrize("model", ["..", ".", "a\r\nb", "a\x00b", "a\\b", "a?b", "a#b", ""])
def test_bedrock_refuses_dot_segments_and_control_characters(model: str) -> None:
    with pytest.raises(InvalidRequest):
        url_of("bedrock", model)


def test_bedrock_arn_is_one_escaped_segment() -> None:
    arn = "arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-3-7"
    url = url_of("bedrock", arn)
    assert urlsplit(url).path == (
        "/model/arn:aws:bedrock:us-east-1:123:inference-profile%2Fus.anthropic.claude-3-7/converse"
    )


@pytest.mark.parametrize(
    ("provider", "model", "path"),
    [
        ("gemini", "gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("gemini", "models/gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("gemini", "tuned model", "/v1beta/models/tuned%20model:generateContent"),
        (
            "vertex_ai",
            "gemini-2.5-pro@001",
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro@001"
            ":generateContent",
        ),
        ("azure", "my-gpt4o", "/openai/deployments/my-gpt4o/chat/completions"),
    ],
)
def test_ordinary_names_reach_the_path(provider: str, model: str, path: str) -> None:
    assert urlsplit(url_of(provider, model)).path == path


@pytest.mark.parametrize(
    ("provider", "model", "api_base", "expected"),
    [
        (
            "openai",
            "gpt-4o",
            "https://proxy.example/v1?x=1",
            "https://proxy.example/v1/chat/completions?x=1",
        ),
        (
            "openai",
            "gpt-4o",
            "https://proxy.example/v1/?x=1&y=2",
            "https://proxy.example/v1/chat/completions?x=1&y=2",
        ),
        (
            "ollama",
            "llama3",
            "http://localhost:11434?x=1",
            "http://localhost:11434/v1/chat/completions?x=1",
        ),
        (
            "anthropic",
            "claude-sonnet-4",
            "https://proxy.example?x=1",
            "https://proxy.example/v1/messages?x=1",
        ),
        (
            "anthropic",
            "claude-sonnet-4",
            "https://proxy.example/v1?x=1",
            "https://proxy.example/v1/messages?x=1",
        ),
        (
            "gemini",
            "gemini-2.5-pro",
            "https://proxy.example/v1beta?x=1",
            "https://proxy.example/v1beta/models/gemini-2.5-pro:generateContent?x=1",
        ),
    ],
)
def test_a_query_in_api_base_stays_after_the_path(
    provider: str, model: str, api_base: str, expected: str
) -> None:
    """Regression: ``?x=1/chat/completions`` (the path appended to the query)."""
    assert url_of(provider, model, api_base=api_base) == expected


def test_the_providers_own_query_is_added_to_api_base_query() -> None:
    url = url_of("gemini", "gemini-2.5-pro", stream=True, api_base="https://p.example/v1beta?x=1")
    assert url == "https://p.example/v1beta/models/gemini-2.5-pro:streamGenerateContent?x=1&alt=sse"


def test_vertex_query_in_api_base() -> None:
    url = url_of("vertex_ai", "gemini-2.5-pro", api_base="https://p.example/v1?x=1")
    assert url.startswith("https://p.example/v1/projects/p/locations/us-central1/publishers/")
    assert url.endswith(":generateContent?x=1")


def test_join_and_segment() -> None:
    assert urls.join("https://h/a/", "/b") == "https://h/a/b"
    assert urls.join("https://h/a?q=1#frag", "/b", "r=2") == "https://h/a/b?q=1&r=2"
    assert urls.segment("a b:c@d") == "a%20b:c@d"
    assert urls.segment("\u00e9") == "%C3%A9"
    assert urls.segment("a/b", allow_slash=True) == "a%2Fb"
