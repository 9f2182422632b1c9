"""An OpenAI chat request -> a GenerateContentRequest body (shared by Gemini and Vertex AI).

https://ai.google.dev/api/generate-content#request-body
https://ai.google.dev/api/generate-content#v1beta.GenerationConfig
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference#request
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import InvalidRequest
from apps.providers.gemini.messages import convert_messages
from apps.providers.gemini.schema import parameters_schema, to_gemini_schema
from apps.providers.schemas import BASE_CHAT_PARAMS, GATEWAY_ONLY_FIELDS, JSONDict

GATEWAY_ONLY = GATEWAY_ONLY_FIELDS
CHAT_PARAMS = (
    GATEWAY_ONLY
    | BASE_CHAT_PARAMS
    | {
        "top_k",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "reasoning_effort",
        "thinking",
        "safety_settings",
        "extra_body",
    }
)
# OpenAI name -> GenerationConfig name, copied as they are.
_GENERATION = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "n": "candidateCount",
}
# reasoning_effort -> thinkingBudget for budget-based models (Gemini 2.5); 0 turns thinking off.
_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
# Gemini 3 models take a thinkingLevel instead; LOW and HIGH are the levels every one supports.
_LEVELS = {
    "none": "low",
    "minimal": "low",
    "low": "low",
    "medium": "high",
    "high": "high",
    "xhigh": "high",
}
# https://ai.google.dev/gemini-api/docs/thinking


def _thinking_config(body: JSONDict, model: str) -> JSONDict | None:
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        effort = effort.lower()
        if effort not in _BUDGETS:
            raise InvalidRequest(
                f"Unsupported reasoning_effort '{effort}'.", param="reasoning_effort"
            )
        if "gemini-3" in model:
            return {"thinkingLevel": _LEVELS[effort], "includeThoughts": True}
        budget = _BUDGETS[effort]
        return {"thinkingBudget": budget, "includeThoughts": budget > 0}
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget_tokens = thinking.get("budget_tokens")
        config: JSONDict = {"includeThoughts": True}
        if isinstance(budget_tokens, int):
            config["thinkingBudget"] = budget_tokens
        return config
    return None


def _generation_config(body: JSONDict, model: str) -> JSONDict:
    config: JSONDict = {}
    for name, gemini_name in _GENERATION.items():
        if body.get(name) is not None:
            config[gemini_name] = body[name]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [str(s) for s in stop]
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            config["responseMimeType"] = "application/json"
            spec = response_format.get("json_schema") or {}
            schema = to_gemini_schema(spec.get("schema") if isinstance(spec, dict) else None)
            if schema:
                config["responseSchema"] = schema
    thinking = _thinking_config(body, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _tools(body: JSONDict) -> list[JSONDict]:
    declarations: list[JSONDict] = []
    native: list[JSONDict] = []
    tools = body.get("tools")
    functions = [{"type": "function", "function": f} for f in body.get("functions") or ()]
    for tool in [*(tools if isinstance(tools, list) else ()), *functions]:
        if not isinstance(tool, dict):
            raise InvalidRequest("Each tool must be an object.", param="tools")
        if "type" not in tool:
            native.append(tool)  # a Gemini tool given as is, e.g. {"googleSearch": {}}
            continue
        if tool["type"] != "function" or not isinstance(tool.get("function"), dict):
            raise InvalidRequest(
                f"Tool type '{tool['type']}' is not supported by Gemini.", param="tools"
            )
        function = tool["function"]
        declaration: JSONDict = {"name": str(function.get("name", ""))}
        if function.get("description"):
            declaration["description"] = str(function["description"])
        parameters = parameters_schema(function.get("parameters"))
        if parameters:
            declaration["parameters"] = parameters
        declarations.append(declaration)
    out = [{"functionDeclarations": declarations}] if declarations else []
    return out + native


def _tool_config(body: JSONDict) -> JSONDict | None:
    choice = body.get("tool_choice", body.get("function_call"))
    if choice is None:
        return None
    if choice == "auto":
        config: JSONDict = {"mode": "AUTO"}
    elif choice == "none":
        config = {"mode": "NONE"}
    elif choice in ("required", "any"):
        config = {"mode": "ANY"}
    elif isinstance(choice, dict):
        function = choice.get("function") if "function" in choice else choice
        name = function.get("name") if isinstance(function, dict) else None
        if not name:
            raise InvalidRequest("tool_choice names no function.", param="tool_choice")
        config = {"mode": "ANY", "allowedFunctionNames": [str(name)]}
    else:
        raise InvalidRequest(f"Unsupported tool_choice {choice!r}.", param="tool_choice")
    return {"functionCallingConfig": config}


def build_generate_content(body: JSONDict, model: str, target_params: Any) -> JSONDict:
    """The GenerateContentRequest for a (filtered) OpenAI chat body; ``extra_body`` keys are
    merged in last (``generationConfig`` key by key)."""
    contents, system = convert_messages(body.get("messages"))
    payload: JSONDict = {"contents": contents}
    if system:
        payload["systemInstruction"] = system
    tools = _tools(body)
    if tools:
        payload["tools"] = tools
    tool_config = _tool_config(body)
    if tool_config and tools:
        payload["toolConfig"] = tool_config
    safety = body.get("safety_settings") or target_params.get("safety_settings")
    if safety:
        payload["safetySettings"] = safety
    config = _generation_config(body, model)
    if config:
        payload["generationConfig"] = config
    extra = body.get("extra_body")
    if isinstance(extra, dict):
        for key, value in extra.items():
            if key == "generationConfig" and isinstance(value, dict):
                payload["generationConfig"] = {**payload.get("generationConfig", {}), **value}
            elif key not in GATEWAY_ONLY:
                payload[key] = value
    return payload
