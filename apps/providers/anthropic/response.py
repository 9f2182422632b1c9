"""Anthropic Message -> OpenAI ``chat.completion``; usage and stop-reason mapping.

Message object: https://docs.anthropic.com/en/api/messages (response ``content``, ``stop_reason``,
``usage``). Prompt-cache accounting: https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
(``input_tokens`` excludes ``cache_read_input_tokens`` and ``cache_creation_input_tokens``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from apps.providers.schemas import JSONDict, Usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(data: JSONDict, key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_anthropic(data: Any) -> Usage | None:
    """Anthropic ``usage`` -> Usage: prompt tokens include cache reads and writes."""
    if not isinstance(data, dict):
        return None
    cache_read = _count(data, "cache_read_input_tokens")
    cache_write = _count(data, "cache_creation_input_tokens")
    details = data.get("output_tokens_details")
    reasoning = _count(details, "thinking_tokens") if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=_count(data, "input_tokens") + cache_read + cache_write,
        completion_tokens=_count(data, "output_tokens"),
        cached_tokens=cache_read,
        cache_creation_tokens=cache_write,
        reasoning_tokens=reasoning,
    )


def openai_usage(usage: Usage) -> JSONDict:
    """The OpenAI ``usage`` object, with the Anthropic cache counters kept alongside."""
    data = usage.to_openai()
    data["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    data["cache_read_input_tokens"] = usage.cached_tokens
    data["cache_creation_input_tokens"] = usage.cache_creation_tokens
    return data


def tool_call(block: JSONDict, index: int | None = None) -> JSONDict:
    arguments = block.get("input")
    call: JSONDict = {
        "id": block.get("id", ""),
        "type": "function",
        "function": {
            "name": block.get("name", ""),
            "arguments": orjson.dumps(arguments if arguments is not None else {}).decode(),
        },
    }
    if index is not None:
        call["index"] = index
    return call


def message_to_openai(data: JSONDict, model: str) -> tuple[JSONDict, Usage | None]:
    """(OpenAI chat.completion dict, usage) for an Anthropic Message object."""
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[JSONDict] = []
    tool_calls: list[JSONDict] = []
    content = data.get("content")
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            tool_calls.append(tool_call(block))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
            thinking_blocks.append(block)
        elif kind == "redacted_thinking":
            thinking_blocks.append(block)
    message: JSONDict = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["reasoning_content"] = "".join(reasoning)
        message["thinking_blocks"] = thinking_blocks
    usage = usage_from_anthropic(data.get("usage"))
    result: JSONDict = {
        "id": str(data.get("id") or ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(data.get("model") or model),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stop_reason")),
            }
        ],
        "system_fingerprint": None,
    }
    if usage is not None:
        result["usage"] = openai_usage(usage)
    return result, usage
