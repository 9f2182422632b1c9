"""OpenAI chat messages -> Anthropic ``system`` blocks and alternating ``messages``.

https://docs.anthropic.com/en/api/messages: system prompts are a top-level field; consecutive
turns of one role are combined; tool results travel as ``tool_result`` blocks in a user turn
and must come first in it (https://docs.anthropic.com/en/docs/build-with-claude/tool-use);
images are ``base64`` or ``url`` sources (https://docs.anthropic.com/en/docs/build-with-claude/vision);
PDFs are ``document`` blocks (https://docs.anthropic.com/en/docs/build-with-claude/pdf-support).
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.core.errors import InvalidRequest
from apps.providers.schemas import JSONDict

# Anthropic content blocks a client may already send inside OpenAI content lists.
_NATIVE_BLOCKS = frozenset({"image", "document", "search_result"})


def convert_messages(messages: Any) -> tuple[list[JSONDict], list[JSONDict]]:
    """(system text blocks, Anthropic messages). Raises InvalidRequest naming the field."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list.", param="messages")
    system: list[JSONDict] = []
    turns: list[tuple[str, list[JSONDict]]] = []
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object.", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            blocks = _text_blocks(message.get("content"), f"{where}.content")
            system.extend(_with_cache_control(blocks, message.get("cache_control")))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
            turn_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
            turn_role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            turn_role = "user"
        else:
            raise InvalidRequest(
                f"{where}.role {role!r} is not supported by provider 'anthropic'.",
                param=f"{where}.role",
            )
        blocks = _with_cache_control(blocks, message.get("cache_control"))
        if turns and turns[-1][0] == turn_role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((turn_role, blocks))
    return system, [_finish_turn(role, blocks) for role, blocks in turns]


def _finish_turn(role: str, blocks: list[JSONDict]) -> JSONDict:
    if role == "user":
        # Tool results must lead the user turn that answers a tool_use turn.
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if results:
            blocks = results + [b for b in blocks if b.get("type") != "tool_result"]
    if len(blocks) == 1 and set(blocks[0]) == {"type", "text"}:
        return {"role": role, "content": blocks[0]["text"]}
    return {"role": role, "content": blocks}


def _with_cache_control(blocks: list[JSONDict], cache_control: Any) -> list[JSONDict]:
    """A message-level ``cache_control`` marks the message's last block."""
    if not cache_control or not blocks:
        return blocks
    return [*blocks[:-1], {**blocks[-1], "cache_control": cache_control}]


def _text_blocks(content: Any, where: str) -> list[JSONDict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of parts.", param=where)
    blocks = []
    for n, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidRequest(f"{where}[{n}] must be a text part.", param=f"{where}[{n}]")
        blocks.append(_text_block(part, f"{where}[{n}]"))
    return blocks


def _text_block(part: JSONDict, where: str) -> JSONDict:
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.text must be a string.", param=f"{where}.text")
    block: JSONDict = {"type": "text", "text": text}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, where: str) -> list[JSONDict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of parts.", param=where)
    return [_part_block(part, f"{where}[{n}]") for n, part in enumerate(content)]


def _part_block(part: Any, where: str) -> JSONDict:
    if not isinstance(part, dict):
        raise InvalidRequest(f"{where} must be an object.", param=where)
    kind = part.get("type")
    if kind == "text":
        return _text_block(part, where)
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        block = _image_from_url(url, f"{where}.image_url.url")
    elif kind == "file":
        block = _document_from_file(part.get("file"), f"{where}.file")
    elif kind in _NATIVE_BLOCKS:
        return part
    else:
        raise InvalidRequest(
            f"{where}: content part type {kind!r} is not supported by provider 'anthropic'.",
            param=f"{where}.type",
        )
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _split_data_url(url: str, where: str) -> tuple[str, str]:
    """``data:<media type>;base64,<data>`` -> (media type, data)."""
    header, sep, data = url[5:].partition(",")
    params = header.split(";")
    if not sep or not params[0] or "base64" not in params[1:]:
        raise InvalidRequest(
            f"{where} must be a base64 data URL (data:<media type>;base64,...).", param=where
        )
    return params[0].lower(), data


def _image_from_url(url: Any, where: str) -> JSONDict:
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{where} must be a URL string.", param=where)
    if url.startswith("data:"):
        media_type, data = _split_data_url(url, where)
        kind = "document" if media_type == "application/pdf" else "image"
        return {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(f"{where} must be an http(s) or data URL.", param=where)


def _document_from_file(file: Any, where: str) -> JSONDict:
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data.startswith("data:"):
        raise InvalidRequest(
            f"{where}: provider 'anthropic' takes files as file_data data URLs only.",
            param=where,
        )
    media_type, payload = _split_data_url(data, f"{where}.file_data")
    if media_type != "application/pdf":
        raise InvalidRequest(
            f"{where}: file type {media_type!r} is not supported by provider 'anthropic'.",
            param=f"{where}.file_data",
        )
    block: JSONDict = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": payload},
    }
    if isinstance(file.get("filename"), str) and file["filename"]:
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: JSONDict, where: str) -> list[JSONDict]:
    blocks: list[JSONDict] = []
    thinking = message.get("thinking_blocks")
    if isinstance(thinking, list):
        blocks.extend(
            b
            for b in thinking
            if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
        )
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for n, part in enumerate(content):
            part_where = f"{where}.content[{n}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if part.get("text"):
                    blocks.append(_text_block(part, part_where))
            elif kind == "refusal" and isinstance(part.get("refusal"), str):
                blocks.append({"type": "text", "text": part["refusal"]})
            elif kind in ("thinking", "redacted_thinking", "tool_use"):
                blocks.append(part)
            else:
                raise InvalidRequest(
                    f"{part_where}: assistant content part type {kind!r} is not supported.",
                    param=part_where,
                )
    elif content is not None:
        raise InvalidRequest(f"{where}.content must be a string or a list.", param=where)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for n, call in enumerate(tool_calls):
            blocks.append(_tool_use(call, f"{where}.tool_calls[{n}]"))
    return blocks


def _tool_use(call: Any, where: str) -> JSONDict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{where}.function.name is required.", param=where)
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.id is required.", param=f"{where}.id")
    return {
        "type": "tool_use",
        "id": call_id,
        "name": function["name"],
        "input": parse_arguments(function.get("arguments"), f"{where}.function.arguments"),
    }


def _tool_result(message: JSONDict, where: str) -> JSONDict:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_call_id is required.", param=f"{where}.tool_call_id")
    content = message.get("content")
    block: JSONDict = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, list):
        block["content"] = [
            _part_block(part, f"{where}.content[{n}]") for n, part in enumerate(content)
        ]
    elif content is None:
        block["content"] = ""
    elif isinstance(content, str):
        block["content"] = content
    else:
        raise InvalidRequest(f"{where}.content must be a string or a list.", param=where)
    return block


def parse_arguments(arguments: Any, where: str) -> JSONDict:
    """Tool-call arguments (a JSON string) -> the object Anthropic takes as ``input``."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    value: Any = None
    if isinstance(arguments, str):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be a JSON object string.", param=where)
    return value
