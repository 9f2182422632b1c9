"""The typed boundary between the gateway and provider translators. No Django, no I/O.

The canonical format is OpenAI's: a request is the client's validated OpenAI body (a dict, never
mutated by a translator), a response is an OpenAI-shaped dict, a stream is OpenAI chunks. Keeping
bodies as dicts instead of per-field objects saves the hot path an object per message.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

JSONDict = dict[str, Any]


# Request fields the gateway consumes itself (``metadata`` is logged): accepted from every
# client for every provider, never sent upstream.
GATEWAY_ONLY_FIELDS = frozenset(
    {
        "metadata",
        "mock_response",
        "drop_params",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "num_retries",
        "timeout",
        "stream_timeout",
        "mock_testing_fallbacks",
        "mock_testing_rate_limit_error",
        "mock_testing_context_fallbacks",
        "mock_testing_content_policy_fallbacks",
        "caching",
        "tags",
        "litellm_metadata",
        "guardrails",
        # A client's own provider credentials (apps.gateway.client_credentials).
        "api_key",
        "api_base",
    }
)

# Chat parameters every provider translates (the messages, streaming, length, sampling, stop
# sequences and end user); each provider's allow-list adds its own to these.
BASE_CHAT_PARAMS = frozenset(
    {
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "user",
    }
)


class Op(enum.StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MODERATIONS = "moderations"


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved deployment: where and how to call, with credentials already resolved."""

    deployment_id: str
    provider: str
    model: str  # upstream model name, provider prefix removed
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout_s: float = 600.0
    stream_timeout_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Other provider settings from ``litellm_params`` (region, project, credentials...), resolved.
    params: Mapping[str, Any] = field(default_factory=dict)
    drop_params: bool = False
    additional_drop_params: tuple[str, ...] = ()
    # Set by the gateway for providers that exchange credentials for a short-lived token.
    access_token: str | None = None
    model_group: str = ""


@dataclass(slots=True)
class CanonicalRequest:
    op: Op
    body: JSONDict  # validated OpenAI body as the client sent it (model = the group name)
    stream: bool = False
    # The client asked for the final usage chunk (stream_options.include_usage).
    include_usage: bool = False
    # Drop parameters the provider does not accept instead of answering 400 (per request).
    drop_params: bool | None = None
    # The client's body in its own format (e.g. Anthropic Messages) when that is not OpenAI's,
    # so a provider speaking that format natively gets it without a lossy round trip.
    native: JSONDict | None = None
    native_format: str | None = None
    # Client headers a native pass-through may forward (e.g. anthropic-version, -beta).
    client_headers: Mapping[str, str] | None = None

    def with_body(self, body: JSONDict, op: Op | None = None) -> CanonicalRequest:
        """The same request with another body (and operation), as a translation step needs."""
        return dataclasses.replace(self, body=body, op=op or self.op)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from a provider cache
    cache_creation_tokens: int = 0  # prompt tokens written to a provider cache
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> JSONDict:
        data: JSONDict = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            data["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens:
            data["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return data

    @classmethod
    def from_openai(cls, data: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object; None when absent or malformed."""
        if not isinstance(data, dict):
            return None
        prompt = _int(data.get("prompt_tokens", data.get("input_tokens")))
        completion = _int(data.get("completion_tokens", data.get("output_tokens")))
        details = data.get("prompt_tokens_details") or data.get("input_tokens_details") or {}
        cdetails = data.get("completion_tokens_details") or {}
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=_int(details.get("cached_tokens")) if isinstance(details, dict) else 0,
            reasoning_tokens=(
                _int(cdetails.get("reasoning_tokens")) if isinstance(cdetails, dict) else 0
            ),
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(slots=True)
class Result:
    """A complete (non-stream) answer in OpenAI shape.

    ``raw`` holds the upstream bytes when they already are the OpenAI answer, so a pass-through
    need not serialise ``data`` again.
    """

    data: JSONDict
    usage: Usage | None = None
    raw: bytes | None = None
    # ``raw`` is in the client's own (native) format, not OpenAI's.
    native: bool = False

    def body(self) -> bytes:
        return self.raw if self.raw is not None else orjson.dumps(self.data)


@dataclass(slots=True)
class StreamChunk:
    """One OpenAI chunk. ``raw`` is its JSON text when relayed unchanged; ``data`` is parsed on
    demand, so a pass-through stream is never parsed chunk by chunk."""

    data: JSONDict | None = None
    raw: bytes | None = None

    def json(self) -> JSONDict:
        if self.data is None:
            self.data = orjson.loads(self.raw or b"{}")
        return self.data

    def payload(self) -> bytes:
        return self.raw if self.raw is not None else orjson.dumps(self.data)

    @classmethod
    def chat(
        cls,
        head: JSONDict,
        delta: JSONDict,
        finish_reason: str | None = None,
        index: int = 0,
    ) -> StreamChunk:
        """A ``chat.completion.chunk`` with one choice; ``head`` holds its id, created and
        model."""
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        data = {"id": head.get("id"), "object": "chat.completion.chunk", **head}
        data["choices"] = [choice]
        return cls(data=data)
