"""OpenAI chat request -> Converse / ConverseStream request body.

https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolConfiguration.html
"""

from __future__ import annotations

import binascii
from typing import Any

import orjson

from apps.core.errors import InvalidRequest
from apps.providers.openai_compat import NOT_FORWARDED
from apps.providers.schemas import BASE_CHAT_PARAMS, JSONDict

# Converse fields a client may set directly (LiteLLM forwards these too).
NATIVE_FIELDS = frozenset(
    {
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "guardrailConfig",
        "performanceConfig",
        "promptVariables",
        "requestMetadata",
    }
)
# OpenAI parameters with a Converse equivalent. ``user`` and ``stream_options`` are accepted
# and not sent (Converse has no end-user field; stream usage always comes in ``metadata``).
CHAT_PARAMS = (
    BASE_CHAT_PARAMS
    | {"top_k", "tools", "tool_choice", "n", "thinking"}
    | NATIVE_FIELDS
    | NOT_FORWARDED
)
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ImageBlock.html
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_CACHE_POINT: JSONDict = {"cachePoint": {"type": "default"}}


def _bad(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"bedrock: {message}", param=param)


def _image_block(url: Any) -> JSONDict:
    """An ``image`` block from a ``data:image/<fmt>;base64,...`` URL (bytes stay base64, as the
    REST API expects). Remote URLs cannot be fetched by a translator: 400."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise _bad(
            "image_url must be a base64 data URL (data:image/png;base64,...); "
            "Bedrock does not fetch remote images.",
            param="messages",
        )
    header, sep, data = url[5:].partition(",")
    media, _, encoding = header.partition(";")
    fmt = _IMAGE_FORMATS.get(media.removeprefix("image/").lower()) if sep else None
    if fmt is None or encoding != "base64" or not media.startswith("image/"):
        raise _bad(
            "image data URL must be base64-encoded png, jpeg, gif or webp.", param="messages"
        )
    try:
        binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _bad("image data URL is not valid base64.", param="messages") from exc
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _content_blocks(content: Any, *, images: bool) -> list[JSONDict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise _bad("message content must be a string or a list of parts.", param="messages")
    blocks: list[JSONDict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if isinstance(text, str) and text:
                blocks.append({"text": text})
        elif kind == "image_url" and images:
            image = part.get("image_url")
            blocks.append(_image_block(image.get("url") if isinstance(image, dict) else image))
        else:
            raise _bad(f"content part type '{kind}' is not supported here.", param="messages")
        if isinstance(part, dict) and part.get("cache_control"):
            blocks.append(_CACHE_POINT)
    return blocks


def _tool_use(call: Any) -> JSONDict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _bad("assistant tool_calls need a function name.", param="messages")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError as exc:
        raise _bad("tool call arguments must be JSON.", param="messages") from exc
    return {"toolUse": {"toolUseId": call.get("id"), "name": function["name"], "input": parsed}}


def _tool_result(message: JSONDict) -> JSONDict:
    content = message.get("content")
    blocks = _content_blocks(content, images=False) or [{"text": ""}]
    return {"toolResult": {"toolUseId": message.get("tool_call_id"), "content": blocks}}


def convert_messages(messages: Any) -> tuple[list[JSONDict], list[JSONDict]]:
    """(system blocks, messages). Consecutive turns of one role are merged, as Converse wants
    user and assistant to alternate; tool results go in a user turn."""
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list.", param="messages")
    system: list[JSONDict] = []
    turns: list[JSONDict] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(_content_blocks(message.get("content"), images=False))
            continue
        if role == "user":
            blocks = _content_blocks(message.get("content"), images=True)
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"), images=False)
            blocks.extend(_tool_use(call) for call in message.get("tool_calls") or ())
        elif role == "tool":
            role, blocks = "user", [_tool_result(message)]
        else:
            raise _bad(f"message role '{role}' is not supported.", param="messages")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tool_spec(tool: Any) -> JSONDict:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type", "function") != "function":
        raise _bad("only function tools are supported.", param="tools")
    spec: JSONDict = {
        "name": function.get("name"),
        "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> JSONDict | None:
    """Converse's toolChoice, or None for "auto" (its default)."""
    if choice in (None, "auto"):
        return None
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"tool": {"name": choice["function"].get("name")}}
    raise _bad(f"tool_choice {choice!r} is not supported.", param="tool_choice")


def _has_tool_blocks(turns: list[JSONDict]) -> bool:
    return any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])


def build_payload(body: JSONDict) -> JSONDict:
    """The Converse body for an OpenAI body already filtered to CHAT_PARAMS."""
    system, turns = convert_messages(body.get("messages"))
    payload: JSONDict = {"messages": turns}
    if system:
        payload["system"] = system
    n = body.get("n")
    if n not in (None, 1):
        raise _bad("only n=1 is supported.", param="n")

    inference: JSONDict = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        payload["inferenceConfig"] = inference

    tools = body.get("tools")
    choice = body.get("tool_choice")
    # Converse has no "none": send no tools, unless earlier turns used tools, which Converse
    # only accepts with toolConfig present.
    if tools and (choice != "none" or _has_tool_blocks(turns)):
        config: JSONDict = {"tools": [_tool_spec(tool) for tool in tools]}
        converse_choice = None if choice == "none" else _tool_choice(choice)
        if converse_choice is not None:
            config["toolChoice"] = converse_choice
        payload["toolConfig"] = config

    additional: JSONDict = {}
    if body.get("top_k") is not None:
        additional["top_k"] = body["top_k"]
    if isinstance(body.get("thinking"), dict):
        additional["thinking"] = body["thinking"]
    for name in NATIVE_FIELDS:
        if body.get(name) is not None:
            payload[name] = body[name]
    if additional:
        payload["additionalModelRequestFields"] = {
            **additional,
            **(payload.get("additionalModelRequestFields") or {}),
        }
    extra = body.get("extra_body")
    if isinstance(extra, dict):
        for key, value in extra.items():
            current = payload.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                payload[key] = {**current, **value}
            else:
                payload[key] = value
    return payload
