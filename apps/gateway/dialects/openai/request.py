"""OpenAI-format request bodies: read, validated and made canonical, per operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.core.errors import InvalidRequest
from apps.gateway.dialects.base import parse_json
from apps.gateway.validation import (
    check_bool,
    check_common_sampling,
    check_int,
    check_model,
    check_obj,
    check_type,
    invalid_type,
    is_int,
    missing,
)
from apps.providers.schemas import CanonicalRequest, JSONDict, Op

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_MESSAGES = 100_000


def _check_content(index: int, role: str, message: JSONDict) -> None:
    content = message.get("content")
    param = f"messages[{index}].content"
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if role == "assistant":
            return
        raise missing(param)
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_type(param, "a string or an array of content parts", content)
    for n, part in enumerate(content):
        if not isinstance(part, dict):
            raise invalid_type(f"{param}[{n}]", "an object", part)
        kind = part.get("type")
        if not isinstance(kind, str):
            raise invalid_type(f"{param}[{n}].type", "a string", kind)
        if kind == "text" and not isinstance(part.get("text"), str):
            raise invalid_type(f"{param}[{n}].text", "a string", part.get("text"))
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str):
                raise invalid_type(f"{param}[{n}].image_url.url", "a string", url)


def _check_messages(body: JSONDict) -> None:
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    if len(messages) > MAX_MESSAGES:
        raise InvalidRequest(
            f"Invalid 'messages': more than {MAX_MESSAGES} messages.",
            param="messages",
            code="array_above_max_length",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{index}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"messages[{index}].role")
        if not isinstance(role, str):
            raise invalid_type(f"messages[{index}].role", "a string", role)
        if role not in ROLES:
            raise InvalidRequest(
                f"Invalid value: '{role[:50]}'. Supported values are: 'system', 'developer', "
                "'user', 'assistant', 'tool' and 'function'.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        _check_content(index, role, message)
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid_type(f"messages[{index}].name", "a string", name)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise missing(f"messages[{index}].tool_call_id")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None:
            if not isinstance(tool_calls, list):
                raise invalid_type(f"messages[{index}].tool_calls", "an array", tool_calls)
            for n, call in enumerate(tool_calls):
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise invalid_type(
                        f"messages[{index}].tool_calls[{n}].function", "an object with a name", fn
                    )


def _check_tools(body: JSONDict) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_type("tools", "an array", tools)
        for n, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise invalid_type(f"tools[{n}]", "an object", tool)
            fn = tool.get("function")
            if tool.get("type", "function") == "function" and (
                not isinstance(fn, dict) or not isinstance(fn.get("name"), str)
            ):
                raise invalid_type(f"tools[{n}].function", "an object with a name", fn)
    check_type(body, "tool_choice", lambda v: isinstance(v, str | dict), "a string or an object")
    check_obj(body, "response_format")
    check_bool(body, "parallel_tool_calls")
    check_bool(body, "logprobs")
    check_int(body, "top_logprobs", 0, 20)


_STREAMING_OPS = frozenset({Op.CHAT, Op.COMPLETIONS})


def _canonical(op: Op, body: JSONDict) -> CanonicalRequest:
    # Embeddings and moderations have no stream form: a stray "stream" flag is ignored.
    stream = op in _STREAMING_OPS and body.get("stream") is True
    options = body.get("stream_options")
    include_usage = bool(stream and isinstance(options, dict) and options.get("include_usage"))
    drop = body.get("drop_params")
    return CanonicalRequest(
        op=op,
        body=body,
        stream=stream,
        include_usage=include_usage,
        drop_params=drop if isinstance(drop, bool) else None,
    )


def check_chat(body: JSONDict) -> CanonicalRequest:
    check_model(body)
    _check_messages(body)
    check_common_sampling(body)
    _check_tools(body)
    return _canonical(Op.CHAT, body)


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(is_int(v) for v in value)


def _check_prompt_like(body: JSONDict, name: str, allow_empty_string: bool) -> None:
    value = body.get(name)
    if value is None:
        raise missing(name)
    if isinstance(value, str):
        if not value and not allow_empty_string:
            raise InvalidRequest(
                f"Invalid '{name}': empty string.", param=name, code="invalid_value"
            )
        return
    if (
        isinstance(value, list)
        and value
        and (
            all(isinstance(v, str) for v in value)
            or _is_token_list(value)
            or all(_is_token_list(v) and v for v in value)
        )
    ):
        return
    if isinstance(value, list) and not value:
        raise InvalidRequest(f"Invalid '{name}': empty array.", param=name, code="empty_array")
    raise invalid_type(name, "a string, an array of strings, or an array of token arrays", value)


def check_completions(body: JSONDict) -> CanonicalRequest:
    check_model(body)
    _check_prompt_like(body, "prompt", allow_empty_string=True)
    check_common_sampling(body)
    check_int(body, "best_of", 1, 128)
    check_int(body, "logprobs", 0, 5)
    check_bool(body, "echo")
    return _canonical(Op.COMPLETIONS, body)


def check_embeddings(body: JSONDict) -> CanonicalRequest:
    check_model(body)
    _check_prompt_like(body, "input", allow_empty_string=False)
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise InvalidRequest(
            "Invalid 'encoding_format': expected 'float' or 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    check_int(body, "dimensions", 1, 65536)
    check_type(body, "user", lambda v: isinstance(v, str), "a string")
    check_obj(body, "metadata")
    return _canonical(Op.EMBEDDINGS, body)


DEFAULT_MODERATION_MODEL = "omni-moderation-latest"


def check_moderations(body: JSONDict) -> CanonicalRequest:
    if check_model(body, required=False) is None:
        body["model"] = DEFAULT_MODERATION_MODEL
    value = body.get("input")
    if value is None:
        raise missing("input")
    if not isinstance(value, str | list) or (isinstance(value, list) and not value):
        raise invalid_type("input", "a string or a non-empty array", value)
    check_obj(body, "metadata")
    return _canonical(Op.MODERATIONS, body)


# Body (already a JSON object) -> validated request, per operation.
VALIDATORS: dict[Op, Callable[[JSONDict], CanonicalRequest]] = {
    Op.CHAT: check_chat,
    Op.COMPLETIONS: check_completions,
    Op.EMBEDDINGS: check_embeddings,
    Op.MODERATIONS: check_moderations,
}


def _parser(op: Op) -> Callable[[bytes], CanonicalRequest]:
    validate = VALIDATORS[op]

    def parse(raw: bytes) -> CanonicalRequest:
        return validate(parse_json(raw))

    parse.__name__ = f"parse_{op.value}"
    return parse


# Raw body -> validated request, per operation.
PARSERS: dict[Op, Callable[[bytes], CanonicalRequest]] = {op: _parser(op) for op in VALIDATORS}
