"""End to end: the Google Gen AI SDK on ``/gemini`` and ``/vertex_ai`` -> the gateway -> the
fake Gemini API / Vertex AI, with only the base URL and the key changed."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from apps.usage.models import UsageLog
from tests.gateway.helpers import E2E, usage_rows
from tests.gateway.passthrough.conftest import GEMINI_KEY

pytestmark = E2E


def gemini_client(gateway: Any, key: str, route: str = "gemini", **kwargs: Any) -> genai.Client:
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(base_url=f"{gateway.url}/{route}", **kwargs),
        vertexai=route == "vertex_ai",
    )


def test_generate_content(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    gemini_group()
    key = make_key(models=["gem"])
    client = gemini_client(gateway_server, key, extra_body={"metadata": {"tag": "gemini-sdk"}})
    reply = client.models.generate_content(model="gem", contents="hello gemini")
    assert reply.text == "hello gemini"
    recorded = google.requests[-1]
    assert recorded.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == GEMINI_KEY
    assert "metadata" not in recorded.body
    assert key not in str(recorded.headers)
    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 200 and row.call_type == "gemini:generateContent"
    assert row.model_group == "gem" and row.provider == "gemini"
    assert row.prompt_tokens == reply.usage_metadata.prompt_token_count
    assert row.completion_tokens == reply.usage_metadata.candidates_token_count
    assert row.metadata == {"tag": "gemini-sdk"}
    assert row.cost > 0


def test_stream(gateway_server: Any, gemini_group: Any, google: Any, make_key: Any) -> None:
    gemini_group()
    client = gemini_client(gateway_server, make_key(models=["gem"]))
    chunks = list(
        client.models.generate_content_stream(model="gem", contents="the quick brown fox")
    )
    assert "".join(c.text or "" for c in chunks) == "the quick brown fox"
    assert google.requests[-1].path.endswith(":streamGenerateContent?alt=sse")
    (row,) = usage_rows(gateway_server, 1)
    assert row.stream and row.status_code == 200
    assert row.prompt_tokens == chunks[-1].usage_metadata.prompt_token_count
    assert row.completion_tokens == chunks[-1].usage_metadata.candidates_token_count > 0


def test_vertex_express_mode(
    gateway_server: Any, vertex_group: Any, google: Any, make_key: Any
) -> None:
    vertex_group()
    client = gemini_client(gateway_server, make_key(models=["vtx"]), route="vertex_ai")
    reply = client.models.generate_content(model="vtx", contents="hello vertex")
    assert reply.text == "hello vertex"
    recorded = google.requests[-1]
    assert recorded.path == (
        "/v1beta1/projects/fake-project/locations/us-east5/publishers/google/models/"
        "gemini-2.5-pro:generateContent"
    )
    assert recorded.headers["authorization"].startswith("Bearer ")
    (row,) = usage_rows(gateway_server, 1)
    assert row.provider == "vertex_ai" and row.prompt_tokens > 0


def test_key_without_access_is_refused(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    gemini_group()
    gemini_group("other")
    client = gemini_client(gateway_server, make_key(models=["other"]))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gem", contents="hello")
    assert caught.value.code == 403
    assert caught.value.status == "PERMISSION_DENIED"
    assert google.requests == []
    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 403


def test_bad_key_is_refused(gateway_server: Any, gemini_group: Any, google: Any) -> None:
    gemini_group()
    client = gemini_client(gateway_server, "sk-not-a-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gem", contents="hello")
    assert caught.value.code == 401
    assert google.requests == []


def test_unknown_model_needs_a_wildcard_group(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    client = gemini_client(gateway_server, make_key())
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.0-flash", contents="hello")
    assert caught.value.code == 404
    # The admin opens raw pass-through to Gemini with a wildcard group.
    gemini_group("gemini/*", model="*")
    from tests.conftest import reset_gateway_caches

    reset_gateway_caches()
    reply = client.models.generate_content(model="gemini-2.0-flash", contents="hello raw")
    assert reply.text == "hello raw"
    assert google.requests[-1].path == "/v1/models/gemini-2.0-flash:generateContent"
    usage_rows(gateway_server, 2)
    assert UsageLog.objects.filter(model_group="gemini/gemini-2.0-flash").count() == 1


def test_upstream_error_is_relayed(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    gemini_group(model="error-400")
    client = gemini_client(gateway_server, make_key())
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gem", contents="hello")
    assert caught.value.code == 400
    assert GEMINI_KEY not in str(caught.value)


def test_relayed_error_has_one_content_type(
    gateway_server: Any, gateway_http: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    """Regression: an upstream error's own content-type was sent beside the gateway's."""
    gemini_group(model="error-429")
    resp = gateway_http.post(
        "/gemini/v1beta/models/gem:generateContent",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": make_key()},
    )
    assert resp.status_code == 429
    assert len(resp.headers.get_list("content-type")) == 1
    assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_next_deployment_after_a_retryable_failure(
    gateway_server: Any, gemini_group: Any, vertex_group: Any, google: Any, make_key: Any
) -> None:
    gemini_group(model="error-503", order=1)
    gemini_group(model="gemini-2.5-flash", order=2)
    vertex_group("gem", order=0)  # another provider's deployment: not used on /gemini
    client = gemini_client(gateway_server, make_key())
    reply = client.models.generate_content(model="gem", contents="second one")
    assert reply.text == "second one"
    assert [r.path.split("/")[-1] for r in google.requests] == [
        "error-503:generateContent",
        "gemini-2.5-flash:generateContent",
    ]
    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 200 and row.upstream_model == "gemini-2.5-flash"


def test_vertex_stream(gateway_server: Any, vertex_group: Any, google: Any, make_key: Any) -> None:
    vertex_group()
    client = gemini_client(gateway_server, make_key(models=["vtx"]), route="vertex_ai")
    chunks = list(client.models.generate_content_stream(model="vtx", contents="vertex streams"))
    assert "".join(c.text or "" for c in chunks) == "vertex streams"
    assert google.requests[-1].path.endswith("gemini-2.5-pro:streamGenerateContent?alt=sse")
    (row,) = usage_rows(gateway_server, 1)
    assert row.stream and row.provider == "vertex_ai"
    assert row.completion_tokens == chunks[-1].usage_metadata.candidates_token_count > 0


def test_path_traversal_is_refused(
    gateway_server: Any, gateway_http: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    gemini_group()
    # Percent-encoded, so the client sends the dots as they are; the path arrives decoded.
    for model in ("gem/%2E%2E/other", "%2E/gem", "gem%2F..%2Fx", "gem%2F%2Fx"):
        resp = gateway_http.post(
            f"/gemini/v1beta/models/{model}:generateContent",
            json={"contents": []},
            headers={"x-goog-api-key": make_key()},
        )
        assert resp.status_code == 400, model
        assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert google.requests == []


def test_raw_passthrough_follows_the_keys_model_access(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    """Regression: a key allowed 'gemini/*' was refused a raw model before routing, because
    its access was checked under the bare model name."""
    gemini_group("gemini/*", model="*")
    gemini_group("gem")
    allowed = gemini_client(gateway_server, make_key(models=["gemini/*"]))
    reply = allowed.models.generate_content(model="gemini-2.0-flash", contents="raw allowed")
    assert reply.text == "raw allowed"
    other = gemini_client(gateway_server, make_key(models=["gem"]))
    with pytest.raises(errors.ClientError) as caught:
        other.models.generate_content(model="gemini-2.0-flash", contents="raw refused")
    assert caught.value.code == 403
    assert len(google.requests) == 1


def test_vertex_with_project_and_a_bearer_token(
    gateway_server: Any, vertex_group: Any, google: Any, make_key: Any
) -> None:
    """The SDK's project/location form sends the gateway key as an OAuth bearer token; the
    deployment's own project and location are used upstream."""
    from google.oauth2.credentials import Credentials

    vertex_group()
    client = genai.Client(
        vertexai=True,
        project="client-project",
        location="europe-west1",
        credentials=Credentials(token=make_key(models=["vtx"])),
        http_options=types.HttpOptions(base_url=gateway_server.url + "/vertex_ai"),
    )
    reply = client.models.generate_content(model="vtx", contents="hello project")
    assert reply.text == "hello project"
    assert "/projects/fake-project/locations/us-east5/" in google.requests[-1].path
