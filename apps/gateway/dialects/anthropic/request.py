"""Messages-format clients on the gateway: Anthropic request -> OpenAI (canonical) request,
OpenAI answer -> Anthropic Message. Pure functions.

Formats: https://docs.anthropic.com/en/api/messages (request and Message),
https://docs.anthropic.com/en/api/errors (error types by status).
"""

from __future__ import annotations

from typing import Any

import orjson

from apps.gateway.dialects.anthropic.messages import (
    bad,
    convert_message,
    is_number,
    require,
    system_message,
)
from apps.gateway.dialects.anthropic.stream import anthropic_usage, stop_reason_for
from apps.providers.schemas import GATEWAY_ONLY_FIELDS, JSONDict, Usage

# Fields with a direct OpenAI counterpart or a special mapping below; gateway-only fields stay
# top-level for the gateway; any other field is Anthropic-specific and rides in extra_body.
_MAPPED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "top_p",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "output_config",
    }
)
_GATEWAY_FIELDS = GATEWAY_ONLY_FIELDS - {"metadata"}


def anthropic_request_to_openai(body: Any) -> JSONDict:
    """The OpenAI chat body for a Messages request. Raises InvalidRequest (with ``param``)
    for input the Messages API would refuse."""
    require(isinstance(body, dict), "The request body must be a JSON object.", "body")
    model = body.get("model")
    require(isinstance(model, str) and bool(model), "'model' is required.", "model")
    max_tokens = body.get("max_tokens")
    require(
        isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1,
        "'max_tokens' is required and must be a positive integer.",
        "max_tokens",
    )
    raw_messages = body.get("messages")
    require(
        isinstance(raw_messages, list) and bool(raw_messages),
        "'messages' must be a non-empty list.",
        "messages",
    )
    out: JSONDict = {"model": model, "max_tokens": max_tokens}
    messages: list[JSONDict] = []
    if body.get("system") is not None:
        messages.append(system_message(body["system"]))
    for n, message in enumerate(raw_messages):
        messages.extend(convert_message(message, f"messages.{n}"))
    out["messages"] = messages

    extra: JSONDict = {}
    stop = body.get("stop_sequences")
    if stop is not None:
        require(
            isinstance(stop, list) and all(isinstance(s, str) for s in stop),
            "'stop_sequences' must be a list of strings.",
            "stop_sequences",
        )
        if stop:
            out["stop"] = stop
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            require(is_number(body[key]), f"'{key}' must be a number.", key)
            out[key] = body[key]
    stream = body.get("stream")
    if stream is not None:
        require(isinstance(stream, bool), "'stream' must be a boolean.", "stream")
        if stream:
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
    if body.get("tools") is not None:
        out["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        out.update(_tool_choice(body["tool_choice"]))
    metadata = body.get("metadata")
    if metadata is not None:
        require(isinstance(metadata, dict), "'metadata' must be an object.", "metadata")
        user_id = metadata.get("user_id")
        if user_id is not None:
            require(isinstance(user_id, str), "'metadata.user_id' must be a string.", "metadata")
            out["user"] = user_id
        out["metadata"] = metadata
    output_config = body.get("output_config")
    if output_config is not None:
        require(
            isinstance(output_config, dict), "'output_config' must be an object.", "output_config"
        )
        rest = dict(output_config)
        fmt = rest.pop("format", None)
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            require(
                isinstance(schema, dict),
                "'output_config.format.schema' is required.",
                "output_config",
            )
            out["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": True},
            }
        elif fmt is not None:
            rest["format"] = fmt
        if rest:
            extra["output_config"] = rest
    for key, value in body.items():
        if key in _GATEWAY_FIELDS:
            out[key] = value
        elif key not in _MAPPED and value is not None:
            extra[key] = value  # thinking, top_k, service_tier, container, ...
    if extra:
        out["extra_body"] = extra
    return out


def _tools(tools: Any) -> list[JSONDict]:
    require(isinstance(tools, list), "'tools' must be a list.", "tools")
    out = []
    for n, tool in enumerate(tools):
        where = f"tools.{n}"
        require(isinstance(tool, dict), f"{where} must be an object.", where)
        if tool.get("type") not in (None, "custom"):
            out.append(tool)  # server tool (web search, code execution...): Anthropic-only
            continue
        require(
            isinstance(tool.get("name"), str) and bool(tool.get("name")),
            f"{where}.name is required.",
            f"{where}.name",
        )
        schema = tool.get("input_schema")
        require(
            isinstance(schema, dict),
            f"{where}.input_schema must be an object.",
            f"{where}.input_schema",
        )
        function: JSONDict = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = bool(tool["strict"])
        converted: JSONDict = {"type": "function", "function": function}
        if tool.get("cache_control"):
            converted["cache_control"] = tool["cache_control"]
        out.append(converted)
    return out


def _tool_choice(choice: Any) -> JSONDict:
    require(isinstance(choice, dict), "'tool_choice' must be an object.", "tool_choice")
    kind = choice.get("type")
    out: JSONDict = {}
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        name = choice.get("name")
        require(
            isinstance(name, str) and bool(name),
            "'tool_choice.name' is required.",
            "tool_choice.name",
        )
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise bad("'tool_choice.type' must be auto, any, tool or none.", "tool_choice.type")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def openai_response_to_anthropic(data: JSONDict, model: str) -> JSONDict:
    """The Anthropic Message for an OpenAI chat.completion dict."""
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    content: list[JSONDict] = []
    thinking = message.get("thinking_blocks")
    if isinstance(thinking, list) and thinking:
        content.extend(b for b in thinking if isinstance(b, dict))
    elif isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        content.append(
            {"type": "thinking", "thinking": message["reasoning_content"], "signature": ""}
        )
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": _arguments(function.get("arguments")),
            }
        )
    raw_usage = data.get("usage")
    usage = Usage.from_openai(raw_usage) or Usage()
    if isinstance(raw_usage, dict) and isinstance(
        raw_usage.get("cache_creation_input_tokens"), int
    ):
        usage.cache_creation_tokens = raw_usage["cache_creation_input_tokens"]
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    return {
        "id": str(data.get("id") or ""),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_for(finish),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def _arguments(arguments: Any) -> JSONDict:
    """Tool arguments as the object Anthropic's ``input`` must be; text that is not a JSON
    object is kept under ``_raw`` rather than lost."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        return {"_raw": str(arguments)}
    return value if isinstance(value, dict) else {"_raw": str(arguments)}
