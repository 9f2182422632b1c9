"""Gemini API translation: GenerateContent responses -> OpenAI chat completions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from apps.core.errors import UpstreamError
from tests.providers.gemini_support import USER, build, chat, fixture, provider, target


class TestResponse:
    def parse(self, name: str) -> tuple[dict[str, Any], Any]:
        result = provider.parse_response(chat({"messages": USER}), target(), fixture(name))
        return result.data, result.usage

    def test_text_thoughts_and_usage(self) -> None:
        data, usage = self.parse("generate_content_text.json")
        assert data["id"] == "chatcmpl-mVd1aKrBIdW0nvgPsZ2x2Q0"
        assert data["object"] == "chat.completion"
        assert data["model"] == "gemini-2.5-flash"
        choice = data["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"] == "Hello! How can I help you today?"
        assert choice["message"]["reasoning_content"] == "The user greets me; answer briefly."
        assert choice["finish_reason"] == "stop"
        assert (usage.prompt_tokens, usage.completion_tokens) == (12, 29)
        assert (usage.cached_tokens, usage.reasoning_tokens) == (4, 20)
        assert data["usage"] == {
            "prompt_tokens": 12,
            "completion_tokens": 29,
            "total_tokens": 41,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 20},
        }

    def test_tool_calls(self) -> None:
        data, usage = self.parse("generate_content_tool_calls.json")
        choice = data["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None
        calls = choice["message"]["tool_calls"]
        assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
        assert orjson.loads(calls[0]["function"]["arguments"]) == {
            "location": "Paris",
            "unit": "celsius",
        }
        assert calls[0]["id"].startswith("call_") and calls[0]["id"].endswith(
            "__thought__CiQBVKhc7rSig1"
        )
        assert "__thought__" not in calls[1]["id"]
        assert len({c["id"] for c in calls}) == 2
        assert all(c["type"] == "function" for c in calls)
        assert usage.total_tokens == 101

    def test_tool_call_ids_round_trip_the_signature(self) -> None:
        data, _ = self.parse("generate_content_tool_calls.json")
        message = data["choices"][0]["message"]
        follow_up = {
            "messages": [
                *USER,
                message,
                *[
                    {"role": "tool", "tool_call_id": c["id"], "content": "ok"}
                    for c in message["tool_calls"]
                ],
            ]
        }
        contents = build(follow_up)["contents"]
        assert contents[1]["parts"][0]["thoughtSignature"] == "CiQBVKhc7rSig1"
        assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == [
            "get_weather",
            "get_time",
        ]

    def test_prompt_blocked(self) -> None:
        data, usage = self.parse("generate_content_prompt_blocked.json")
        assert data["choices"] == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        ]
        assert usage.prompt_tokens == 7

    def test_safety_finish(self) -> None:
        data, _ = self.parse("generate_content_safety_finish.json")
        assert data["choices"][0]["finish_reason"] == "content_filter"
        assert data["choices"][0]["message"]["content"] == ""

    def test_max_tokens_and_candidates(self) -> None:
        data, _ = self.parse("generate_content_max_tokens.json")
        assert [(c["index"], c["finish_reason"]) for c in data["choices"]] == [
            (0, "length"),
            (1, "length"),
        ]
        assert data["choices"][1]["message"]["content"] == "It was a dark"

    @pytest.mark.parametrize(
        ("reason", "expected"),
        [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
        ],
    )
    def test_finish_reasons(self, reason: str, expected: str) -> None:
        body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
        result = provider.parse_response(chat({"messages": USER}), target(), orjson.dumps(body))
        assert result.data["choices"][0]["finish_reason"] == expected

    def test_invalid_json_is_a_bad_gateway(self) -> None:

        with pytest.raises(UpstreamError) as info:
            provider.parse_response(chat({"messages": USER}), target(), b"<html>")
        assert info.value.http_status == 502
