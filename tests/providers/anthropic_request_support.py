"""Shared helpers of the OpenAI -> Anthropic request translation tests."""

from __future__ import annotations

from typing import Any

import orjson

from apps.providers.anthropic import AnthropicProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, UpstreamRequest

MODEL = "claude-sonnet-4-5-20250929"


def make_target(**fields: Any) -> Target:
    fields.setdefault("model", MODEL)
    fields.setdefault("api_key", "sk-ant-secret")
    return Target(deployment_id="d1", provider="anthropic", **fields)


def build(
    body: dict[str, Any],
    *,
    stream: bool = False,
    target: Target | None = None,
    drop: bool | None = None,
) -> tuple[UpstreamRequest, dict[str, Any]]:
    body = {"model": "group", **body}
    request = CanonicalRequest(op=Op.CHAT, body=body, stream=stream, drop_params=drop)
    upstream = AnthropicProvider().build_request(request, target or make_target())
    assert upstream.body is not None
    return upstream, orjson.loads(upstream.body)


def payload(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build(body, **kwargs)[1]


USER = [{"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
