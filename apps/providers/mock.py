"""The ``mock`` provider: answers in-process, deterministically, with no network and no key.

Chat echoes the last user message (or ``mock_response`` when the deployment or the request sets
one), streamed in chunks of ``mock_chunk_words`` words; ``mock_latency_ms`` delays the first
byte and ``mock_chunk_delay_ms`` each following chunk. Token counts are estimated at one token
per four characters, so usage and cost are non-zero and reproducible.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from apps.core.errors import UpstreamError
from apps.providers.base import BaseProvider, StreamDecoder, SupportsLocal
from apps.providers.schemas import (
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    StreamChunk,
    Target,
    UpstreamRequest,
    Usage,
)


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _prompt_text(body: JSONDict) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        return "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
    prompt = body.get("prompt", body.get("input", ""))
    if isinstance(prompt, list):
        return "\n".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""


def _reply_text(body: JSONDict, target: Target) -> str:
    fixed = body.get("mock_response", target.params.get("mock_response"))
    if isinstance(fixed, str):
        return fixed
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""
    return _prompt_text(body)


def _vector(text: str, dims: int) -> list[float]:
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for (value,) in struct.iter_unpack(">I", digest):
            out.append(round(value / 2**31 - 1.0, 6))
        counter += 1
    norm = math.sqrt(sum(v * v for v in out[:dims])) or 1.0
    return [round(v / norm, 6) for v in out[:dims]]


class MockProvider(BaseProvider):
    name: ClassVar[str] = "mock"
    display_name: ClassVar[str] = "Mock (offline)"
    ops = frozenset({Op.CHAT, Op.COMPLETIONS, Op.EMBEDDINGS, Op.MODERATIONS})
    api_key_env: ClassVar[str | None] = None

    @property
    def local(self) -> SupportsLocal:
        return self

    def local_latency_s(self, target: Target) -> tuple[float, float]:
        first = float(target.params.get("mock_latency_ms", 0) or 0) / 1000
        between = float(target.params.get("mock_chunk_delay_ms", 0) or 0) / 1000
        return first, between

    def _usage(self, body: JSONDict, reply: str) -> Usage:
        return Usage(
            prompt_tokens=estimate_tokens(_prompt_text(body)),
            completion_tokens=estimate_tokens(reply),
        )

    def _failure(self, target: Target) -> None:
        status = target.params.get("mock_error_status")
        if status:
            raise UpstreamError(
                f"mock error: simulated upstream failure ({status}).",
                upstream_status=int(status),
                http_status=int(status) if int(status) < 500 else 502,
            )

    def local_response(self, request: CanonicalRequest, target: Target) -> Result:
        self.check_op(request)
        self._failure(target)
        body = request.body
        created = int(time.time())
        rid = "mock-" + hashlib.sha1(repr(body).encode()).hexdigest()[:24]  # noqa: S324 - an id
        if request.op is Op.EMBEDDINGS:
            inputs = body.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            dimensions = body.get("dimensions")
            dims = dimensions if isinstance(dimensions, int) else 8
            texts = [i if isinstance(i, str) else repr(i) for i in items]
            usage = Usage(prompt_tokens=sum(estimate_tokens(t) for t in texts))
            data: JSONDict = {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": n, "embedding": _vector(t, dims)}
                    for n, t in enumerate(texts)
                ],
                "model": target.model,
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "total_tokens": usage.prompt_tokens,
                },
            }
            return Result(data=data, usage=usage)
        if request.op is Op.MODERATIONS:
            inputs = body.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            data = {
                "id": rid,
                "model": target.model,
                "results": [
                    {"flagged": False, "categories": {}, "category_scores": {}} for _ in items
                ],
            }
            return Result(data=data, usage=Usage())
        reply = _reply_text(body, target)
        usage = self._usage(body, reply)
        if request.op is Op.COMPLETIONS:
            data = {
                "id": rid,
                "object": "text_completion",
                "created": created,
                "model": target.model,
                "choices": [{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}],
                "usage": usage.to_openai(),
            }
            return Result(data=data, usage=usage)
        data = {
            "id": "chatcmpl-" + rid,
            "object": "chat.completion",
            "created": created,
            "model": target.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage.to_openai(),
            "system_fingerprint": None,
        }
        return Result(data=data, usage=usage)

    def local_stream(self, request: CanonicalRequest, target: Target) -> Iterator[StreamChunk]:
        self.check_op(request)
        self._failure(target)
        body = request.body
        reply = _reply_text(body, target)
        words = int(target.params.get("mock_chunk_words", 1) or 1)
        pieces = _split_words(reply, max(1, words))
        created = int(time.time())
        rid = "chatcmpl-mock-" + hashlib.sha1(repr(body).encode()).hexdigest()[:24]  # noqa: S324
        text_op = request.op is Op.COMPLETIONS
        base: JSONDict = {
            "id": rid,
            "object": "text_completion" if text_op else "chat.completion.chunk",
            "created": created,
            "model": target.model,
        }
        if not text_op:
            yield StreamChunk(
                data={
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
            )
        for piece in pieces:
            if text_op:
                choice: JSONDict = {
                    "index": 0,
                    "text": piece,
                    "logprobs": None,
                    "finish_reason": None,
                }
            else:
                choice = {
                    "index": 0,
                    "delta": {"content": piece},
                    "logprobs": None,
                    "finish_reason": None,
                }
            yield StreamChunk(data={**base, "choices": [choice]})
        final: JSONDict = (
            {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
            if text_op
            else {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
        )
        yield StreamChunk(data={**base, "choices": [final]})
        usage = self._usage(body, reply)
        yield StreamChunk(data={**base, "choices": [], "usage": usage.to_openai()})

    # The Provider protocol, for completeness: the gateway never sends a mock request.
    def build_request(self, request: CanonicalRequest, target: Target) -> UpstreamRequest:
        raise UpstreamError("the mock provider answers locally", retryable=False)

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result:
        raise UpstreamError("the mock provider answers locally", retryable=False)

    def new_stream_decoder(self, request: CanonicalRequest, target: Target) -> StreamDecoder:
        raise UpstreamError("the mock provider answers locally", retryable=False)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return UpstreamError(f"mock error {status}", upstream_status=status)


def _split_words(text: str, per_chunk: int) -> list[str]:
    """Split keeping every character, so the chunks concatenate back to ``text`` exactly."""
    if not text:
        return []
    tokens: list[str] = []
    current = ""
    for ch in text:
        if ch.isspace() and current and not current[-1].isspace():
            tokens.append(current)
            current = ch
        else:
            current += ch
    if current:
        tokens.append(current)
    return ["".join(tokens[i : i + per_chunk]) for i in range(0, len(tokens), per_chunk)]
