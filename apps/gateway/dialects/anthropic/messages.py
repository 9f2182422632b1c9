"""Anthropic Messages ``system`` and ``messages`` -> OpenAI chat messages (inbound side).

https://docs.anthropic.com/en/api/messages: a user turn may hold ``tool_result`` blocks, which
become OpenAI ``tool`` messages placed before the turn's other content; assistant ``tool_use``
blocks become ``tool_calls``; images and PDFs become ``image_url`` and ``file`` parts.
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.core.errors import InvalidRequest
from apps.providers.schemas import JSONDict


def bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def require(condition: bool, message: str, param: str) -> None:
    if not condition:
        raise bad(message, param)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def system_message(system: Any) -> JSONDict:
    if isinstance(system, str):
        return {"role": "system", "content": system}
    require(
        isinstance(system, list), "'system' must be a string or a list of text blocks.", "system"
    )
    parts = []
    for n, block in enumerate(system):
        require(
            isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str),
            f"system.{n} must be a text block.",
            f"system.{n}",
        )
        parts.append(_text_part(block))
    if len(parts) == 1 and "cache_control" not in parts[0]:
        return {"role": "system", "content": parts[0]["text"]}
    return {"role": "system", "content": parts}


def _text_part(block: JSONDict) -> JSONDict:
    part: JSONDict = {"type": "text", "text": block["text"]}
    if block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _blocks(content: Any, where: str) -> list[JSONDict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    require(isinstance(content, list), f"{where} must be a string or a list of blocks.", where)
    for n, block in enumerate(content):
        require(
            isinstance(block, dict) and isinstance(block.get("type"), str),
            f"{where}.{n} must be a content block with a type.",
            f"{where}.{n}",
        )
    return list(content)


def convert_message(message: Any, where: str) -> list[JSONDict]:
    require(isinstance(message, dict), f"{where} must be an object.", where)
    role = message.get("role")
    require(
        role in ("user", "assistant"),
        f"{where}.role must be 'user' or 'assistant'.",
        f"{where}.role",
    )
    blocks = _blocks(message.get("content"), f"{where}.content")
    if role == "assistant":
        return [_assistant_message(blocks, f"{where}.content")]
    tool_messages: list[JSONDict] = []
    parts: list[JSONDict] = []
    for n, block in enumerate(blocks):
        block_where = f"{where}.content.{n}"
        if block["type"] == "tool_result":
            tool_messages.append(_tool_message(block, block_where))
        else:
            parts.append(_user_part(block, block_where))
    out = tool_messages
    if parts:
        plain = len(parts) == 1 and set(parts[0]) == {"type", "text"}
        out.append({"role": "user", "content": parts[0]["text"] if plain else parts})
    return out


def _user_part(block: JSONDict, where: str) -> JSONDict:
    kind = block["type"]
    if kind == "text":
        require(isinstance(block.get("text"), str), f"{where}.text must be a string.", where)
        return _text_part(block)
    if kind in ("image", "document"):
        source = block.get("source")
        if not isinstance(source, dict):
            raise bad(f"{where}.source is required.", f"{where}.source")
        part: JSONDict | None = None
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            url = f"data:{source.get('media_type', '')};base64,{source['data']}"
            if kind == "image":
                part = {"type": "image_url", "image_url": {"url": url}}
            elif source.get("media_type") == "application/pdf":
                file: JSONDict = {"file_data": url}
                if isinstance(block.get("title"), str):
                    file["filename"] = block["title"]
                part = {"type": "file", "file": file}
        elif source.get("type") == "url" and kind == "image" and isinstance(source.get("url"), str):
            part = {"type": "image_url", "image_url": {"url": source["url"]}}
        if part is None:
            return block  # another source kind: kept as the Anthropic block itself
        if block.get("cache_control"):
            part["cache_control"] = block["cache_control"]
        return part
    if kind == "search_result":
        return block
    raise bad(f"{where}: block type {kind!r} is not allowed in a user message.", f"{where}.type")


def _tool_message(block: JSONDict, where: str) -> JSONDict:
    call_id = block.get("tool_use_id")
    require(isinstance(call_id, str) and bool(call_id), f"{where}.tool_use_id is required.", where)
    content = block.get("content")
    message: JSONDict = {"role": "tool", "tool_call_id": call_id}
    if content is None or isinstance(content, str):
        message["content"] = content or ""
    else:
        parts = [
            _user_part(b, f"{where}.content.{n}")
            for n, b in enumerate(_blocks(content, f"{where}.content"))
        ]
        if all(set(p) == {"type", "text"} for p in parts):
            message["content"] = "".join(p["text"] for p in parts)
        else:
            message["content"] = parts
    if block.get("cache_control"):
        message["cache_control"] = block["cache_control"]
    return message


def _assistant_message(blocks: list[JSONDict], where: str) -> JSONDict:
    texts: list[JSONDict] = []
    tool_calls: list[JSONDict] = []
    thinking: list[JSONDict] = []
    for n, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            require(
                isinstance(block.get("text"), str),
                f"{where}.{n}.text must be a string.",
                f"{where}.{n}",
            )
            texts.append(_text_part(block))
        elif kind == "tool_use":
            require(
                isinstance(block.get("id"), str) and isinstance(block.get("name"), str),
                f"{where}.{n}: tool_use needs an id and a name.",
                f"{where}.{n}",
            )
            tool_input = block.get("input", {})
            require(
                isinstance(tool_input, dict),
                f"{where}.{n}.input must be an object.",
                f"{where}.{n}",
            )
            tool_calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {
                        "name": block["name"],
                        "arguments": orjson.dumps(tool_input).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block)
        else:
            raise bad(
                f"{where}.{n}: block type {kind!r} is not supported here.", f"{where}.{n}.type"
            )
    message: JSONDict = {"role": "assistant"}
    if any("cache_control" in t for t in texts):
        message["content"] = texts
    else:
        message["content"] = "".join(t["text"] for t in texts) if texts else None
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message
