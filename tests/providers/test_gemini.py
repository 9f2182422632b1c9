"""Gemini API translation: OpenAI chat requests -> GenerateContent (responses: see
test_gemini_response.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apps.core.errors import InvalidRequest
from apps.providers.schemas import Op
from tests.providers.gemini_support import USER, build, chat, provider, target


class TestUrlAndHeaders:
    def test_generate_content_url_and_key_header(self) -> None:
        req = provider.build_request(chat({"messages": USER}), target())
        assert req.method == "POST"
        assert req.url == (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
            ":generateContent"
        )
        assert req.headers["x-goog-api-key"] == "test-key"
        assert req.headers["content-type"] == "application/json"
        assert "authorization" not in req.headers

    def test_stream_url_uses_sse(self) -> None:
        req = provider.build_request(chat({"messages": USER}, stream=True), target())
        assert req.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")

    def test_api_base_and_models_prefix(self) -> None:
        req = provider.build_request(
            chat({"messages": USER}),
            target(api_base="http://127.0.0.1:9/v1beta/", model="models/gemini-pro"),
        )
        assert req.url == "http://127.0.0.1:9/v1beta/models/gemini-pro:generateContent"

    def test_api_version_selects_default_host_path(self) -> None:
        req = provider.build_request(chat({"messages": USER}), target(api_version="v1"))
        assert req.url.startswith("https://generativelanguage.googleapis.com/v1/models/")

    def test_deployment_headers_are_added(self) -> None:
        req = provider.build_request(chat({"messages": USER}), target(headers={"x-extra": "1"}))
        assert req.headers["x-extra"] == "1"

    def test_registry_names_the_api_key_env(self) -> None:
        assert provider.api_key_env == "GEMINI_API_KEY"
        assert Op.EMBEDDINGS in provider.ops


class TestTools:
    TOOL = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a place",
            "strict": True,
            "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "location": {"type": "string", "format": "uri", "description": "City"},
                    "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
                    "when": {"$ref": "#/$defs/When"},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "mode": {"const": 3},
                    "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                },
                "required": ["location", "ghost"],
                "$defs": {"When": {"type": "string", "format": "date-time"}},
            },
        },
    }

    def test_function_declarations_are_cleaned(self) -> None:
        payload = build({"messages": USER, "tools": [self.TOOL]})
        declaration = payload["tools"][0]["functionDeclarations"][0]
        assert declaration == {
            "name": "get_weather",
            "description": "Weather for a place",
            "parameters": {
                "type": "OBJECT",
                "properties": {
                    "location": {"type": "STRING", "description": "City"},
                    "unit": {"type": "STRING", "enum": ["c", "f"], "nullable": True},
                    "when": {"type": "STRING", "format": "date-time"},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1},
                    "mode": {"type": "STRING", "enum": ["3"]},
                    "either": {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]},
                },
                "required": ["location"],
            },
        }

    def test_function_without_parameters(self) -> None:
        tool = {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        }
        payload = build({"messages": USER, "tools": [tool]})
        assert payload["tools"] == [{"functionDeclarations": [{"name": "now"}]}]

    def test_native_tools_pass_through(self) -> None:
        payload = build({"messages": USER, "tools": [{"googleSearch": {}}]})
        assert payload["tools"] == [{"googleSearch": {}}]

    @pytest.mark.parametrize(
        ("choice", "expected"),
        [
            ("auto", {"mode": "AUTO"}),
            ("none", {"mode": "NONE"}),
            ("required", {"mode": "ANY"}),
            (
                {"type": "function", "function": {"name": "get_weather"}},
                {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
            ),
        ],
    )
    def test_tool_choice(self, choice: Any, expected: dict[str, Any]) -> None:
        payload = build({"messages": USER, "tools": [self.TOOL], "tool_choice": choice})
        assert payload["toolConfig"] == {"functionCallingConfig": expected}

    def test_unsupported_tool_type(self) -> None:
        with pytest.raises(InvalidRequest, match="not supported"):
            build({"messages": USER, "tools": [{"type": "code_interpreter"}]})


class TestGenerationConfig:
    def test_parameters_map(self) -> None:
        payload = build(
            {
                "messages": USER,
                "temperature": 0.2,
                "top_p": 0.9,
                "max_completion_tokens": 100,
                "max_tokens": 5,
                "stop": ["END", "STOP"],
                "n": 2,
                "seed": 7,
                "presence_penalty": 0.5,
                "frequency_penalty": -0.5,
                "user": "u-1",
                "parallel_tool_calls": True,
                "stream_options": {"include_usage": True},
            }
        )
        assert payload["generationConfig"] == {
            "temperature": 0.2,
            "topP": 0.9,
            "maxOutputTokens": 100,
            "stopSequences": ["END", "STOP"],
            "candidateCount": 2,
            "seed": 7,
            "presencePenalty": 0.5,
            "frequencyPenalty": -0.5,
        }
        assert set(payload) == {"contents", "generationConfig"}

    def test_single_stop_and_max_tokens(self) -> None:
        config = build({"messages": USER, "stop": "END", "max_tokens": 5})["generationConfig"]
        assert config == {"stopSequences": ["END"], "maxOutputTokens": 5}

    def test_json_object(self) -> None:
        config = build({"messages": USER, "response_format": {"type": "json_object"}})
        assert config["generationConfig"] == {"responseMimeType": "application/json"}

    def test_json_schema(self) -> None:
        fmt = {
            "type": "json_schema",
            "json_schema": {
                "name": "person",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name", "age"],
                    "additionalProperties": False,
                },
            },
        }
        config = build({"messages": USER, "response_format": fmt})["generationConfig"]
        assert config == {
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}},
                "required": ["name", "age"],
            },
        }

    @pytest.mark.parametrize(
        ("effort", "model", "expected"),
        [
            ("low", "gemini-2.5-flash", {"thinkingBudget": 1024, "includeThoughts": True}),
            ("high", "gemini-2.5-pro", {"thinkingBudget": 24576, "includeThoughts": True}),
            ("none", "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": False}),
            ("medium", "gemini-3-pro-preview", {"thinkingLevel": "high", "includeThoughts": True}),
            ("minimal", "gemini-3-flash", {"thinkingLevel": "low", "includeThoughts": True}),
        ],
    )
    def test_reasoning_effort(self, effort: str, model: str, expected: dict[str, Any]) -> None:
        payload = build({"messages": USER, "reasoning_effort": effort}, model=model)
        assert payload["generationConfig"]["thinkingConfig"] == expected

    def test_anthropic_style_thinking(self) -> None:
        body = {"messages": USER, "thinking": {"type": "enabled", "budget_tokens": 2000}}
        config = build(body)["generationConfig"]
        assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 2000}

    def test_extra_body_and_safety_settings(self) -> None:
        safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
        payload = build(
            {
                "messages": USER,
                "temperature": 1,
                "safety_settings": safety,
                "extra_body": {
                    "generationConfig": {"topK": 3},
                    "cachedContent": "cachedContents/x",
                },
            }
        )
        assert payload["safetySettings"] == safety
        assert payload["generationConfig"] == {"temperature": 1, "topK": 3}
        assert payload["cachedContent"] == "cachedContents/x"

    def test_gateway_only_fields_are_never_forwarded(self) -> None:
        payload = build(
            {
                "messages": USER,
                "metadata": {"a": 1},
                "mock_response": "x",
                "drop_params": True,
                "fallbacks": ["m"],
                "num_retries": 2,
                "caching": True,
                "tags": ["t"],
                "litellm_metadata": {},
                "guardrails": ["g"],
            }
        )
        assert set(payload) == {"contents"}

    def test_unsupported_parameter_is_rejected(self) -> None:
        with pytest.raises(InvalidRequest, match=r"'logit_bias'.*gemini") as info:
            build({"messages": USER, "logit_bias": {"1": 2}})
        assert info.value.param == "logit_bias"

    def test_unsupported_parameter_is_dropped_when_asked(self) -> None:
        payload = build({"messages": USER, "logit_bias": {"1": 2}}, drop_params=True)
        assert "logit_bias" not in orjson.dumps(payload).decode()
        req = chat({"messages": USER, "logprobs": True}, drop_params=True)
        assert provider.build_request(req, target()).body is not None

    def test_additional_drop_params(self) -> None:
        payload = build({"messages": USER, "seed": 3}, additional_drop_params=("seed",))
        assert "generationConfig" not in payload
