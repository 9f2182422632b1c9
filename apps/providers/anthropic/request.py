"""OpenAI chat request -> Anthropic Messages request body, URL and headers.

Wire format: https://docs.anthropic.com/en/api/messages (request body),
https://docs.anthropic.com/en/api/versioning (``anthropic-version``),
https://docs.anthropic.com/en/docs/build-with-claude/vision (image sources),
https://docs.anthropic.com/en/docs/build-with-claude/tool-use (tools, tool_choice, tool_result).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.core.errors import InvalidRequest
from apps.providers import urls
from apps.providers.anthropic.messages import convert_messages
from apps.providers.base import finish_payload
from apps.providers.schemas import BASE_CHAT_PARAMS, JSONDict, Target

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

# Maximum output tokens by model-name prefix, most specific first, from the models overview
# (https://docs.anthropic.com/en/docs/about-claude/models/overview). Used only when the client
# sends no max_tokens: the Messages API requires one. Unknown models get DEFAULT_MAX_TOKENS.
MAX_OUTPUT_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-6", 128_000),
    ("claude-sonnet-4-6", 128_000),
    ("claude-opus-4-5", 64_000),
    ("claude-sonnet-4-5", 64_000),
    ("claude-haiku-4-5", 64_000),
    ("claude-opus-4-1", 32_000),
    ("claude-opus-4", 32_000),
    ("claude-sonnet-4", 64_000),
    ("claude-3-7-sonnet", 64_000),
    ("claude-3-5-", 8_192),
    ("claude-3-", 4_096),
)

# ``reasoning_effort`` -> extended thinking budget. The API takes budgets of at least 1024
# tokens, below max_tokens (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking).
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
MIN_THINKING_BUDGET = 1024

# OpenAI parameters this translator understands. Anything else is refused (400) unless the
# deployment or the request drops unsupported parameters.
CHAT_PARAMS = BASE_CHAT_PARAMS | {
    "model",
    "top_k",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "thinking",
    "extra_body",
}

# Values that ask for the default behaviour, so they need no support from the upstream.
NOOP_VALUES: dict[str, tuple[Any, ...]] = {"n": (1,), "logprobs": (False,)}


def messages_url(base: str, suffix: str = "") -> str:
    """``{api_base}/v1/messages{suffix}``; a base that already names /v1 or /v1/messages is
    kept, and so is its query string."""
    path = urls.path_of(base)
    if path.endswith("/v1/messages"):
        return urls.join(base, suffix)
    if path.endswith("/v1"):
        return urls.join(base, "/messages" + suffix)
    return urls.join(base, "/v1/messages" + suffix)


def build_headers(
    target: Target, client_headers: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Request headers. Precedence: deployment headers > client's anthropic-* headers >
    deployment params (``anthropic_version``) > defaults."""
    version = target.params.get("anthropic_version") or API_VERSION
    headers = {"content-type": "application/json", "anthropic-version": str(version)}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    for name, value in (client_headers or {}).items():
        lowered = name.lower()
        if lowered in ("anthropic-version", "anthropic-beta") and value:
            headers[lowered] = value
    for name, value in target.headers.items():
        headers[name.lower()] = value
    return headers


def default_max_tokens(model: str) -> int:
    for prefix, limit in MAX_OUTPUT_TOKENS:
        if model.startswith(prefix):
            return limit
    return DEFAULT_MAX_TOKENS


def build_payload(body: JSONDict, target: Target, *, stream: bool) -> JSONDict:
    """The Anthropic body for an OpenAI chat body (already filtered for supported params).

    Raises InvalidRequest for content that cannot be expressed (bad tool arguments,
    unsupported content parts, invalid reasoning_effort...).
    """
    system, messages = convert_messages(body.get("messages"))
    payload: JSONDict = {"model": target.model, "messages": messages}
    if system:
        plain = len(system) == 1 and set(system[0]) == {"type", "text"}
        payload["system"] = system[0]["text"] if plain else system
    explicit_max = body.get("max_completion_tokens") or body.get("max_tokens")
    if explicit_max is not None:
        max_tokens = _int_param(explicit_max, "max_tokens")
    else:
        configured = target.params.get("max_tokens")
        max_tokens = int(configured) if configured else default_max_tokens(target.model)
    payload["max_tokens"] = max_tokens

    stop = body.get("stop")
    if isinstance(stop, str):
        payload["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        payload["stop_sequences"] = [s for s in stop if isinstance(s, str)]
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            payload[key] = body[key]
    user = body.get("user")
    if isinstance(user, str) and user:
        payload["metadata"] = {"user_id": user}

    tools = convert_tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
    tool_choice = convert_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tool_choice is not None and (tools or tool_choice.get("type") == "none"):
        payload["tool_choice"] = tool_choice

    thinking = _thinking(body, max_tokens)
    if thinking is not None:
        payload["thinking"] = thinking
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        payload["output_config"] = {"format": output_format}
    if stream:
        payload["stream"] = True

    return finish_payload(payload, body, target)


def convert_tools(tools: Any) -> list[JSONDict]:
    """OpenAI function tools -> Anthropic custom tools; Anthropic-native tool definitions
    (server tools such as web search, or already ``input_schema``-shaped) pass unchanged."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list.", param="tools")
    out: list[JSONDict] = []
    for n, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools[{n}] must be an object.", param=f"tools[{n}]")
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            if "function" in tool:
                raise InvalidRequest(
                    f"tools[{n}].function must be an object.", param=f"tools[{n}].function"
                )
            out.append(tool)
            continue
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(
                f"tools[{n}].function.name is required.", param=f"tools[{n}].function.name"
            )
        converted: JSONDict = {"name": name}
        if function.get("description"):
            converted["description"] = function["description"]
        schema = function.get("parameters")
        converted["input_schema"] = (
            schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        )
        if function.get("strict") is not None:
            converted["strict"] = bool(function["strict"])
        cache_control = tool.get("cache_control") or function.get("cache_control")
        if cache_control:
            converted["cache_control"] = cache_control
        out.append(converted)
    return out


def convert_tool_choice(choice: Any, parallel: Any) -> JSONDict | None:
    """OpenAI tool_choice (+ parallel_tool_calls) -> Anthropic tool_choice, None for default."""
    result: JSONDict | None
    if choice is None:
        result = None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    elif isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type") == "function" and isinstance(name, str) and name:
            result = {"type": "tool", "name": name}
        elif choice.get("type") in ("auto", "any", "tool", "none"):
            result = dict(choice)  # already Anthropic-shaped
        else:
            raise InvalidRequest("Invalid 'tool_choice'.", param="tool_choice")
    else:
        raise InvalidRequest("Invalid 'tool_choice'.", param="tool_choice")
    if parallel is False:
        if result is None:
            result = {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


def _thinking(body: JSONDict, max_tokens: int) -> JSONDict | None:
    explicit = body.get("thinking")
    if isinstance(explicit, dict):
        return explicit
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise InvalidRequest(
            f"Invalid reasoning_effort {effort!r}: use one of "
            f"{', '.join(sorted(THINKING_BUDGETS))} or none.",
            param="reasoning_effort",
        )
    # Thinking tokens count against max_tokens and the budget must stay below it.
    budget = min(budget, max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        raise InvalidRequest(
            f"reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on provider "
            "'anthropic'.",
            param="max_tokens",
        )
    return {"type": "enabled", "budget_tokens": budget}


def _output_format(response_format: Any) -> JSONDict | None:
    """``json_schema`` maps to structured outputs (``output_config.format``,
    https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs). ``json_object``
    has no Anthropic equivalent and is dropped: the model then follows the prompt's wording."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise InvalidRequest(
            "response_format.json_schema.schema must be an object.",
            param="response_format",
        )
    return {"type": "json_schema", "schema": schema}


def _int_param(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
    return value
