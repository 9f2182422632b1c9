"""Gemini API translation of chat messages: roles and system instructions, images, audio and
files, tool calls and their results (https://ai.google.dev/api/caching#Content)."""

from __future__ import annotations

import base64

import orjson
import pytest

from apps.core.errors import InvalidRequest
from apps.providers.schemas import CanonicalRequest, Op
from tests.providers.gemini_support import USER, build, provider, target


class TestMessages:
    def test_roles_system_and_merge(self) -> None:
        payload = build(
            {
                "messages": [
                    {"role": "system", "content": "Be terse."},
                    {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                    {"role": "user", "content": "One"},
                    {"role": "user", "content": "Two"},
                    {"role": "assistant", "content": "Ok"},
                    {"role": "user", "content": "Three"},
                ]
            }
        )
        assert payload["systemInstruction"] == {
            "parts": [{"text": "Be terse."}, {"text": "No emoji."}]
        }
        assert payload["contents"] == [
            {"role": "user", "parts": [{"text": "One"}, {"text": "Two"}]},
            {"role": "model", "parts": [{"text": "Ok"}]},
            {"role": "user", "parts": [{"text": "Three"}]},
        ]

    def test_images_audio_and_files(self) -> None:
        png = base64.b64encode(b"\x89PNG").decode()
        payload = build(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Look"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{png}"},
                            },
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://x.test/a/cat.webp"},
                            },
                            {"type": "image_url", "image_url": {"url": "gs://bucket/photo"}},
                            {
                                "type": "input_audio",
                                "input_audio": {"data": "UklG", "format": "mp3"},
                            },
                            {
                                "type": "file",
                                "file": {"file_data": "data:application/pdf;base64,JVBE"},
                            },
                            {"type": "image_url", "image_url": "data:text/plain,caf%C3%A9"},
                        ],
                    }
                ]
            }
        )
        parts = payload["contents"][0]["parts"]
        assert parts[0] == {"text": "Look"}
        assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": png}}
        assert parts[2] == {
            "fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/a/cat.webp"}
        }
        assert parts[3] == {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/photo"}}
        assert parts[4] == {"inlineData": {"mimeType": "audio/mp3", "data": "UklG"}}
        assert parts[5] == {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}
        assert parts[6] == {
            "inlineData": {
                "mimeType": "text/plain",
                "data": base64.b64encode("café".encode()).decode(),
            }
        }

    def test_tool_call_round_trip(self) -> None:
        payload = build(
            {
                "messages": [
                    {"role": "user", "content": "Weather and time in Paris?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1__thought__c2ln",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"location": "Paris"}',
                                },
                            },
                            {
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "get_time", "arguments": ""},
                            },
                        ],
                    },
                    {
                        "role": "tool",
                        "tool_call_id": "call_1__thought__c2ln",
                        "content": '{"temp": 21}',
                    },
                    {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
                ]
            }
        )
        assert payload["contents"][1] == {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                    "thoughtSignature": "c2ln",
                },
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        }
        assert payload["contents"][2] == {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
            ],
        }

    def test_tool_message_for_unknown_call_is_rejected(self) -> None:
        with pytest.raises(InvalidRequest, match="unknown tool_call_id"):
            build({"messages": [*USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}]})

    def test_bad_tool_arguments_are_rejected(self) -> None:
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
        with pytest.raises(InvalidRequest, match="not valid JSON"):
            build({"messages": [*USER, {"role": "assistant", "tool_calls": [call]}]})

    def test_only_system_messages_is_rejected(self) -> None:
        with pytest.raises(InvalidRequest):
            build({"messages": [{"role": "system", "content": "x"}]})

    def test_request_body_is_not_mutated(self) -> None:
        body = {"model": "g", "messages": [{"role": "user", "content": "Hi"}], "stop": "x"}
        snapshot = orjson.dumps(body)
        provider.build_request(CanonicalRequest(op=Op.CHAT, body=body), target())
        assert orjson.dumps(body) == snapshot
