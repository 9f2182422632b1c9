"""OpenAI chat messages -> Gemini ``contents`` and ``systemInstruction``.

Roles become ``user``/``model``; system and developer messages become the system instruction;
assistant tool calls become ``functionCall`` parts and tool results ``functionResponse`` parts
(named after the call they answer); consecutive turns of one role are merged, as Gemini expects
the answers to parallel calls in one turn.
https://ai.google.dev/api/caching#Content
https://ai.google.dev/gemini-api/docs/function-calling
"""

from __future__ import annotations

import base64
import mimetypes
import urllib.parse
from typing import Any

import orjson

from apps.core.errors import InvalidRequest
from apps.providers.schemas import JSONDict

# Tool call ids carry the part's thought signature after this marker, so that the signature
# survives the round trip through an OpenAI client (Gemini 3 rejects function calls replayed
# without it: https://ai.google.dev/gemini-api/docs/thought-signatures).
SIGNATURE_MARKER = "__thought__"
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "ogg": "audio/ogg"}


def split_tool_call_id(call_id: str) -> tuple[str, str | None]:
    base, sep, signature = call_id.partition(SIGNATURE_MARKER)
    return base, (signature or None) if sep else None


def _invalid(message: str, param: str = "messages") -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _data_url(url: str) -> JSONDict | None:
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep:
        raise _invalid("Malformed data URL in message content.")
    mime, _, flags = header.partition(";")
    if "base64" not in flags.split(";"):
        data = base64.b64encode(urllib.parse.unquote_to_bytes(data)).decode()
    return {"inlineData": {"mimeType": mime or "application/octet-stream", "data": data}}


def _uri_part(url: str, default_mime: str) -> JSONDict:
    inline = _data_url(url)
    if inline is not None:
        return inline
    path = urllib.parse.urlsplit(url).path
    mime = mimetypes.guess_type(path)[0] or default_mime
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _content_part(part: Any) -> JSONDict | None:
    if isinstance(part, str):
        return {"text": part}
    if not isinstance(part, dict):
        raise _invalid("Message content parts must be objects.")
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise _invalid("image_url content part without a url.")
        fmt = image.get("format") if isinstance(image, dict) else None
        return _uri_part(url, fmt if isinstance(fmt, str) else "image/jpeg")
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        mime = _AUDIO_MIME.get(str(audio.get("format", "")).lower(), "audio/wav")
        return {"inlineData": {"mimeType": mime, "data": str(audio.get("data", ""))}}
    if kind == "file":
        file = part.get("file") or {}
        source = file.get("file_data") or file.get("file_id")
        if not isinstance(source, str):
            raise _invalid("file content part without file_data or file_id.")
        fmt = file.get("format")
        return _uri_part(source, fmt if isinstance(fmt, str) else "application/pdf")
    if kind in ("refusal", "thinking", "redacted_thinking"):
        return None
    raise _invalid(f"Content part type '{kind}' is not supported by Gemini.")


def _parts(content: Any) -> list[JSONDict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        return [p for p in (_content_part(item) for item in content) if p is not None]
    raise _invalid("Message content must be a string or a list of parts.")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) if isinstance(p, dict) else str(p)
            for p in content
            if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")
        )
    return "" if content is None else str(content)


def _arguments(raw: Any, name: str) -> JSONDict:
    if isinstance(raw, dict):
        return raw
    if raw in (None, ""):
        return {}
    try:
        parsed = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise _invalid(f"Arguments of the call to '{name}' are not valid JSON.") from None
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _function_call_parts(tool_calls: Any, names: dict[str, str]) -> list[JSONDict]:
    parts = []
    for call in tool_calls if isinstance(tool_calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise _invalid("Assistant tool_calls need a function name.")
        name = str(function["name"])
        call_id = str(call.get("id") or "")
        names[call_id] = name
        part: JSONDict = {
            "functionCall": {"name": name, "args": _arguments(function.get("arguments"), name)}
        }
        signature = split_tool_call_id(call_id)[1]
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(message: JSONDict, names: dict[str, str]) -> JSONDict:
    call_id = str(message.get("tool_call_id") or "")
    name = names.get(call_id) or message.get("name")
    if not name:
        raise _invalid(f"Tool message answers unknown tool_call_id '{call_id}'.")
    text = _text(message.get("content"))
    try:
        value = orjson.loads(text) if text else ""
    except orjson.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"content": value}
    return {"functionResponse": {"name": str(name), "response": response}}


def convert_messages(messages: Any) -> tuple[list[JSONDict], JSONDict | None]:
    """(contents, systemInstruction or None). Raises InvalidRequest for unusable messages."""
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty list.")
    system: list[JSONDict] = []
    contents: list[JSONDict] = []
    names: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            raise _invalid("Each message must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text(message.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            turn, parts = "user", _parts(message.get("content"))
        elif role == "assistant":
            turn = "model"
            parts = _parts(message.get("content"))
            parts += _function_call_parts(message.get("tool_calls"), names)
            legacy = message.get("function_call")
            if isinstance(legacy, dict) and not message.get("tool_calls"):
                parts += _function_call_parts([{"function": legacy}], names)
        elif role in ("tool", "function"):
            if role == "function":
                message = {**message, "tool_call_id": message.get("name")}
            turn, parts = "user", [_function_response(message, names)]
        else:
            raise _invalid(f"Message role '{role}' is not supported.")
        if not parts:
            continue
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    if not contents:
        raise _invalid("At least one non-system message with content is required.")
    return contents, ({"parts": system} if system else None)
