"""Converse response -> OpenAI chat completion.

https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.base import parse_json_object
from apps.providers.schemas import JSONDict, Result, Usage

# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html (stopReason)
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(data: JSONDict, name: str) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_bedrock(data: Any) -> Usage | None:
    """``inputTokens`` excludes the prompt tokens read from or written to the cache, which
    Bedrock counts separately; OpenAI's ``prompt_tokens`` includes them."""
    if not isinstance(data, dict):
        return None
    cache_read = _count(data, "cacheReadInputTokens")
    cache_write = _count(data, "cacheWriteInputTokens")
    return Usage(
        prompt_tokens=_count(data, "inputTokens") + cache_read + cache_write,
        completion_tokens=_count(data, "outputTokens"),
        cached_tokens=cache_read,
        cache_creation_tokens=cache_write,
    )


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def tool_call(block: JSONDict, index: int | None = None) -> JSONDict:
    call: JSONDict = {
        "id": block.get("toolUseId"),
        "type": "function",
        "function": {
            "name": block.get("name"),
            "arguments": orjson.dumps(block.get("input", {})).decode(),
        },
    }
    if index is not None:
        call["index"] = index
    return call


def parse_converse(body: bytes, model: str) -> Result:
    """The OpenAI response for a Converse success body. Raises UpstreamError (502) when the
    body is not a Converse response."""
    data = parse_json_object("bedrock", body)
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamError(
            "bedrock returned a response without output.message.", upstream_status=200
        )
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JSONDict] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            calls.append(tool_call(block["toolUse"]))
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    reply: JSONDict = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    usage = usage_from_bedrock(data.get("usage"))
    result: JSONDict = {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stopReason")),
            }
        ],
        "system_fingerprint": None,
    }
    if usage is not None:
        result["usage"] = usage.to_openai()
    return Result(data=result, usage=usage)
