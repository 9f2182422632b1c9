"""The ``azure_text`` provider: Azure OpenAI deployments that only serve the legacy completions
endpoint (``gpt-35-turbo-instruct`` and older).

Completions requests pass through as with ``azure``. Chat requests are sent to
``/completions``: the message texts joined by newlines become the ``prompt``, and the
``text_completion`` answer (or stream) comes back as a ``chat.completion`` (or chunks), Azure's
filter results included. Chat parameters without a completions counterpart (tools,
response_format...) are refused with a 400 unless drop_params is on.

Completions API: https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#completions
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from apps.providers.azure.provider import AzureOpenAIProvider
from apps.providers.base import StreamDecoder, parse_json_object
from apps.providers.errors import error_from_openai_body
from apps.providers.openai_compat import NOT_FORWARDED
from apps.providers.openai_stream import OpenAIStreamDecoder
from apps.providers.schemas import (
    BASE_CHAT_PARAMS,
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    StreamChunk,
    Target,
    Usage,
)
from apps.providers.sse import SSEDataDecoder

# Chat parameters the completions endpoint also takes (max_completion_tokens is renamed).
TEXT_CHAT_PARAMS = BASE_CHAT_PARAMS | {
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "seed",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def prompt_of(messages: Any) -> str:
    """The prompt sent for a chat request: each message's text, one per line."""
    if not isinstance(messages, list):
        return ""
    return "\n".join(_text(m.get("content")) for m in messages if isinstance(m, dict))


def chat_choice(choice: Any, stream: bool, first: bool) -> JSONDict:
    """One completions choice as a chat choice (a delta in streams)."""
    if not isinstance(choice, dict):
        return {"index": 0, "finish_reason": None}
    text = choice.get("text") if isinstance(choice.get("text"), str) else ""
    out: JSONDict = {"index": choice.get("index", 0)}
    if stream:
        out["delta"] = {"role": "assistant", "content": text} if first else {"content": text}
    else:
        out["message"] = {"role": "assistant", "content": text}
    out["logprobs"] = None
    out["finish_reason"] = choice.get("finish_reason")
    if "content_filter_results" in choice:
        out["content_filter_results"] = choice["content_filter_results"]
    return out


def chat_from_text(data: JSONDict, stream: bool, seen: set[int] | None = None) -> JSONDict:
    """A ``text_completion`` object (or stream chunk) in chat shape. ``seen`` holds the choice
    indexes that already had their first delta."""
    choices = []
    for choice in data.get("choices") or []:
        index = choice.get("index", 0) if isinstance(choice, dict) else 0
        first = seen is not None and index not in seen
        if seen is not None:
            seen.add(index)
        choices.append(chat_choice(choice, stream, first))
    out = {k: v for k, v in data.items() if k not in ("choices", "object")}
    out["object"] = "chat.completion.chunk" if stream else "chat.completion"
    out["choices"] = choices
    return out


class AzureTextProvider(AzureOpenAIProvider):
    name: ClassVar[str] = "azure_text"
    display_name: ClassVar[str] = "Azure OpenAI text completion"
    ops = frozenset({Op.CHAT, Op.COMPLETIONS})

    def url(self, op: Op, target: Target) -> str:
        return super().url(Op.COMPLETIONS, target)

    def build_payload(self, request: CanonicalRequest, target: Target) -> JSONDict:
        if request.op is not Op.CHAT:
            return super().build_payload(request, target)
        body = self.filter_params(request, target, TEXT_CHAT_PARAMS | NOT_FORWARDED)
        payload = {k: v for k, v in body.items() if k not in NOT_FORWARDED}
        payload["prompt"] = prompt_of(payload.pop("messages", None))
        limit = payload.pop("max_completion_tokens", None)
        if limit is not None and "max_tokens" not in payload:
            payload["max_tokens"] = limit
        as_text = request.with_body(payload, Op.COMPLETIONS)
        out = super().build_payload(as_text, target)
        extra = request.body.get("extra_body")
        if isinstance(extra, dict):
            out.update(extra)
        return out

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result:
        if request.op is not Op.CHAT:
            return super().parse_response(request, target, body)
        data = parse_json_object(self.name, body)
        if isinstance(data.get("error"), dict) and "choices" not in data:
            raise error_from_openai_body(self.name, 502, body, {})
        return Result(
            data=chat_from_text(data, stream=False), usage=Usage.from_openai(data.get("usage"))
        )

    def new_stream_decoder(self, request: CanonicalRequest, target: Target) -> StreamDecoder:
        if request.op is not Op.CHAT:
            return super().new_stream_decoder(request, target)
        return TextToChatStreamDecoder(self.name)

    def new_relay_decoder(
        self, request: CanonicalRequest, target: Target
    ) -> OpenAIStreamDecoder | None:
        """Completions stream in OpenAI's format and pass through; chat is translated."""
        if request.op is not Op.CHAT:
            return super().new_relay_decoder(request, target)
        return None


class TextToChatStreamDecoder(SSEDataDecoder):
    """Completions SSE chunks -> ``chat.completion.chunk`` dicts, usage kept from the chunk
    that carries it. Chunks without choices (Azure's prompt filter results) are relayed."""

    __slots__ = ("_provider", "_seen", "usage")

    def __init__(self, provider: str) -> None:
        super().__init__()
        self._provider = provider
        self._seen: set[int] = set()
        self.usage: Usage | None = None

    def _chunks(self, payloads: list[bytes]) -> list[StreamChunk]:
        out = []
        for payload in payloads:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("error"), dict):
                raise error_from_openai_body(self._provider, 502, payload, {})
            usage = Usage.from_openai(data.get("usage"))
            if usage is not None:
                self.usage = usage
            out.append(StreamChunk(data=chat_from_text(data, stream=True, seen=self._seen)))
        return out
