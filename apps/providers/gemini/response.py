"""A GenerateContentResponse -> an OpenAI chat completion.

Text parts are joined into ``content``, thought parts into ``reasoning_content``, functionCall
parts become ``tool_calls`` (ids generated here, the part's thought signature appended).
https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse
https://ai.google.dev/api/generate-content#FinishReason
https://ai.google.dev/api/generate-content#UsageMetadata
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from apps.providers.gemini.messages import SIGNATURE_MARKER
from apps.providers.schemas import JSONDict, Usage

_CONTENT_FILTER = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def finish_reason(reason: Any, has_tool_calls: bool) -> str | None:
    """The OpenAI finish_reason for a Gemini FinishReason (None while not finished)."""
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if reason in _CONTENT_FILTER:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    if has_tool_calls:
        return "tool_calls"
    return "stop"


def usage_from(metadata: Any) -> Usage | None:
    """Usage from ``usageMetadata``: prompt tokens include cached and tool-use prompt tokens,
    completion tokens include thinking tokens (both are billed as such)."""
    if not isinstance(metadata, dict):
        return None

    def count(name: str) -> int:
        value = metadata.get(name)
        return value if isinstance(value, int) and value > 0 else 0

    thoughts = count("thoughtsTokenCount")
    return Usage(
        prompt_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        completion_tokens=count("candidatesTokenCount") + thoughts,
        cached_tokens=count("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def new_call_id(function_call: JSONDict, signature: Any) -> str:
    base = function_call.get("id")
    call_id = str(base) if isinstance(base, str) and base else "call_" + uuid.uuid4().hex[:24]
    if isinstance(signature, str) and signature:
        call_id += SIGNATURE_MARKER + signature
    return call_id


def tool_call(part: JSONDict) -> JSONDict:
    call = part["functionCall"]
    return {
        "id": new_call_id(call, part.get("thoughtSignature")),
        "type": "function",
        "function": {
            "name": str(call.get("name", "")),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }


def split_parts(parts: Any) -> tuple[list[str], list[str], list[JSONDict]]:
    """(text pieces, thought pieces, tool calls) of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[JSONDict] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    return texts, thoughts, calls


def completion_id(data: JSONDict) -> str:
    rid = data.get("responseId")
    return "chatcmpl-" + (str(rid) if isinstance(rid, str) and rid else uuid.uuid4().hex)


def to_chat_completion(data: JSONDict, model: str) -> tuple[JSONDict, Usage | None]:
    """The OpenAI chat completion for a GenerateContentResponse, and its usage."""
    usage = usage_from(data.get("usageMetadata"))
    choices: list[JSONDict] = []
    candidates = data.get("candidates")
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
        if not isinstance(candidate, dict):
            continue
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts, thoughts, calls = split_parts(parts)
        message: JSONDict = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        index = candidate.get("index")
        choices.append(
            {
                "index": index if isinstance(index, int) else position,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls))
                or "stop",
            }
        )
    feedback = data.get("promptFeedback")
    if not choices and isinstance(feedback, dict) and feedback.get("blockReason"):
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        )
    result: JSONDict = {
        "id": completion_id(data),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(data.get("modelVersion") or model),
        "choices": choices,
        "system_fingerprint": None,
    }
    if usage is not None:
        result["usage"] = usage.to_openai()
    return result, usage
