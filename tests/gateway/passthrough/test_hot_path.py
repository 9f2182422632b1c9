"""The native routes stay off the database once warm, like /v1 (see test_hot_path_queries)."""

from __future__ import annotations

from typing import Any

import boto3
from google import genai
from google.genai import types

from tests.gateway.helpers import E2E
from tests.gateway.test_hot_path_queries import queries, settle_change_poll  # noqa: F401

pytestmark = E2E


def test_no_query_on_native_routes_once_warm(
    gateway_server: Any,
    gemini_group: Any,
    vertex_group: Any,
    bedrock_group: Any,
    make_key: Any,
    queries: Any,  # noqa: F811
) -> None:
    gemini_group()
    vertex_group()
    bedrock_group()
    key = make_key(models=["gem", "vtx", "claude"])
    gemini = genai.Client(
        api_key=key, http_options=types.HttpOptions(base_url=gateway_server.url + "/gemini")
    )
    vertex = genai.Client(
        api_key=key,
        vertexai=True,
        http_options=types.HttpOptions(base_url=gateway_server.url + "/vertex_ai"),
    )
    bedrock = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gateway_server.url + "/bedrock",
        aws_access_key_id=key,
        aws_secret_access_key=key,
    )
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    settle_change_poll()

    def calls() -> None:
        gemini.models.generate_content(model="gem", contents="hi")
        list(gemini.models.generate_content_stream(model="gem", contents="hi"))
        vertex.models.generate_content(model="vtx", contents="hi")
        bedrock.converse(modelId="claude", messages=messages)
        list(bedrock.converse_stream(modelId="claude", messages=messages)["stream"])

    calls()
    queries.take()
    for _ in range(3):
        calls()
    assert queries.take() == []
