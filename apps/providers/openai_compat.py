"""OpenAI and every OpenAI-compatible API: the body is forwarded untouched except for the
upstream model name, unknown parameters included; responses are relayed as bytes.

API reference: https://platform.openai.com/docs/api-reference/chat
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from apps.core.errors import UpstreamError, UpstreamUnavailable
from apps.providers.base import (
    BaseProvider,
    StreamDecoder,
    error_from_openai_body,
    parse_json_object,
)
from apps.providers.schemas import (
    GATEWAY_ONLY_FIELDS,
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    StreamChunk,
    Target,
    UpstreamRequest,
    Usage,
)
from apps.providers.sse import SSEEvent, SSEParser

_PATHS = {
    Op.CHAT: "/chat/completions",
    Op.COMPLETIONS: "/completions",
    Op.EMBEDDINGS: "/embeddings",
    Op.MODERATIONS: "/moderations",
}
# Never forwarded as given: gateway-only fields, and ``extra_body`` (merged into the body).
NOT_FORWARDED = GATEWAY_ONLY_FIELDS | {"extra_body"}


class OpenAICompatibleProvider(BaseProvider):
    name: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI"
    ops = frozenset({Op.CHAT, Op.COMPLETIONS, Op.EMBEDDINGS, Op.MODERATIONS})
    default_api_base: ClassVar[str | None] = "https://api.openai.com/v1"
    # Whether the upstream accepts ``stream_options.include_usage``.
    supports_stream_usage: ClassVar[bool] = True
    # Environment variable read for the key when a deployment sets none (LiteLLM's behaviour).
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"

    def url(self, op: Op, target: Target) -> str:
        return self.api_base(target) + _PATHS[op]

    def auth_headers(self, target: Target) -> dict[str, str]:
        headers = {}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        organization = target.params.get("organization")
        if organization:
            headers["openai-organization"] = str(organization)
        return headers

    def build_payload(self, request: CanonicalRequest, target: Target) -> JSONDict:
        body = request.body
        payload = {k: v for k, v in body.items() if k not in NOT_FORWARDED}
        extra = body.get("extra_body")
        if isinstance(extra, dict):
            payload.update(extra)
        for key in target.additional_drop_params:
            payload.pop(key, None)
        payload["model"] = target.model
        if request.stream and request.op in (Op.CHAT, Op.COMPLETIONS):
            if self.supports_stream_usage:
                options = dict(payload.get("stream_options") or {})
                options["include_usage"] = True
                payload["stream_options"] = options
            else:
                payload.pop("stream_options", None)
        return payload

    def build_request(self, request: CanonicalRequest, target: Target) -> UpstreamRequest:
        self.check_op(request)
        headers = {"content-type": "application/json", **self.auth_headers(target)}
        if target.headers:
            headers.update(target.headers)
        return UpstreamRequest(
            method="POST",
            url=self.url(request.op, target),
            headers=headers,
            body=orjson.dumps(self.build_payload(request, target)),
        )

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result:
        data = parse_json_object(self.name, body)
        if "error" in data and isinstance(data["error"], dict) and "choices" not in data:
            raise error_from_openai_body(self.name, 502, body, {})
        return Result(data=data, usage=Usage.from_openai(data.get("usage")), raw=body)

    def new_stream_decoder(self, request: CanonicalRequest, target: Target) -> StreamDecoder:
        return OpenAIStreamDecoder(self.name)

    def new_relay_decoder(
        self, request: CanonicalRequest, target: Target
    ) -> OpenAIStreamDecoder | None:
        return OpenAIStreamDecoder(self.name)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return error_from_openai_body(self.name, status, body, headers)


def _has_usage(data: bytes, end: int) -> bool:
    """Whether ``data[:end]`` holds a usage object (not ``"usage":null``, which every chunk of
    a stream carries when usage is requested)."""
    return data.count(b'"usage"', 0, end) != data.count(b'"usage":null', 0, end)


class OpenAIStreamDecoder:
    """Relays OpenAI chunks as bytes; parses only the chunks that carry usage or an error."""

    __slots__ = (
        "_done",
        "_error",
        "_finished",
        "_last",
        "_parser",
        "_provider",
        "usage",
        "usage_relayed",
    )

    def __init__(self, provider: str) -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._done = False
        self._finished = False  # a chunk carried a finish_reason
        # An error event is raised on the call after the one that read it, so the chunks
        # that came before it in the same read still reach the client.
        self._error: UpstreamError | None = None
        self.usage: Usage | None = None
        # For relay(): the last bytes sent, and whether the usage chunk went to the client.
        self._last = b""
        self.usage_relayed = False

    def feed(self, data: bytes) -> list[StreamChunk]:
        if self._error is not None:
            raise self._error
        return self._chunks(self._parser.feed(data))

    def finish(self) -> list[StreamChunk]:
        """Flush; raises UpstreamUnavailable when the upstream stopped before the answer was
        complete (neither ``[DONE]`` nor a finish_reason), so the client never mistakes a cut
        stream for a whole one."""
        if self._error is not None:
            raise self._error
        chunks = self._chunks(self._parser.finish())
        if self._error is not None:
            raise self._error
        if not self._done and not self._finished:
            raise UpstreamUnavailable(
                f"{self._provider} error: the stream ended before the answer was complete."
            )
        return chunks

    @property
    def done(self) -> bool:
        """The upstream sent ``[DONE]``: nothing after it is relayed."""
        return self._done

    def relay(self, data: bytes, include_usage: bool) -> bytes:
        """The bytes to send as they are to a client speaking OpenAI's format.

        The leading run of whole, ordinary chunk events in a read (usually all of it) is
        forwarded untouched, without parsing; what follows it (the usage chunk, ``[DONE]``, a
        partial event) goes through the event parser. A read that holds an error, a carriage
        return, or a usage object before its tail, or that continues a partial event, is parsed
        whole. The usage chunk is dropped unless the client asked for it; ``[DONE]`` is left to
        the gateway. Each check is one pass of a C search over the read: this runs for every
        read of every stream.
        """
        if self._error is not None:
            raise self._error
        plain = self._parser.idle and b"\r" not in data and b'"error"' not in data
        cut = self._ordinary_prefix(data) if plain else 0
        if not cut:
            return self._encode(self.feed(data), include_usage)
        head = data if cut == len(data) else data[:cut]
        # A finish_reason sits in the last chunks of a stream, where rfind starts looking.
        if not self._finished and head.rfind(b'"finish_reason":"') >= 0:
            self._finished = True
        self._last = head
        if cut == len(data):
            return data
        return head + self._encode(self.feed(data[cut:]), include_usage)

    def _ordinary_prefix(self, data: bytes) -> int:
        """Length of the leading run of whole ordinary events in ``data`` (0 when unsure).

        Walks back from the end over the events that need parsing (a usage object,
        ``[DONE]``, a partial event), then checks that none is left in the run before them.
        """
        end = len(data)
        if not data.endswith(b"\n\n"):
            end = data.rfind(b"\n\n") + 2
            if end <= 1:
                return 0
        while end > 0:
            boundary = data.rfind(b"\n\n", 0, end - 2)
            start = boundary + 2 if boundary >= 0 else 0
            event = data[start:end]
            if b"[DONE]" in event or _has_usage(event, len(event)):
                end = start
            else:
                break
        if not end:
            return 0
        if data.find(b"[DONE]", 0, end) >= 0 or _has_usage(data, end):
            return 0
        return end

    def finish_relay(self, include_usage: bool) -> bytes:
        """Like finish(), for relay()."""
        return self._encode(self.finish(), include_usage)

    def _encode(self, chunks: list[StreamChunk], include_usage: bool) -> bytes:
        out = []
        for chunk in chunks:
            data = chunk.data  # parsed only when it carries usage
            if data is not None and data.get("choices") == [] and data.get("usage"):
                if not include_usage:
                    continue
                self.usage_relayed = True
            out.append(b"data: " + chunk.payload() + b"\n\n")
        if out:
            self._last = out[-1]
        return b"".join(out)

    def last_chunk(self) -> StreamChunk | None:
        """The last chunk relayed (for the id and model of a usage chunk made afterwards)."""
        block = self._last.rstrip()
        if not block:
            return None
        payload = block.rsplit(b"\n\n", 1)[-1]
        if payload.startswith(b"data:"):
            payload = payload[5:].lstrip()
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        return StreamChunk(data=data) if isinstance(data, dict) else None

    def _chunks(self, events: list[SSEEvent]) -> list[StreamChunk]:
        out: list[StreamChunk] = []
        for event in events:
            payload = event.data
            if self._done or not payload:
                continue
            if payload == b"[DONE]":
                self._done = True
                continue
            chunk = StreamChunk(raw=payload)
            if not self._finished and b'"finish_reason":"' in payload:
                self._finished = True
            # Chunks carry '"usage":null' when usage is requested: only the real usage
            # chunk and error chunks are worth parsing.
            if b'"error"' in payload or (b'"usage"' in payload and b'"usage":null' not in payload):
                try:
                    data = chunk.json()
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(data, dict):
                    continue
                if isinstance(data.get("error"), dict):
                    self._error = error_from_openai_body(self._provider, 502, payload, {})
                    if not out:
                        raise self._error
                    return out
                usage = Usage.from_openai(data.get("usage"))
                if usage is not None:
                    self.usage = usage
            out.append(chunk)
        return out


def _compat(
    name: str,
    display: str,
    base: str | None,
    key_env: str | None,
    stream_usage: bool = True,
    ops: frozenset[Op] | None = None,
) -> type[OpenAICompatibleProvider]:
    attrs: dict[str, object] = {
        "name": name,
        "display_name": display,
        "default_api_base": base,
        "api_key_env": key_env,
        "supports_stream_usage": stream_usage,
    }
    if ops is not None:
        attrs["ops"] = ops
    return type(f"{display.replace(' ', '')}Provider", (OpenAICompatibleProvider,), attrs)


class OllamaProvider(OpenAICompatibleProvider):
    """Ollama's OpenAI-compatible API lives under /v1 of the server address that LiteLLM configs
    give as api_base (https://github.com/ollama/ollama/blob/main/docs/openai.md)."""

    name = "ollama"
    display_name = "Ollama"
    default_api_base = "http://localhost:11434"
    api_key_env = None
    ops = frozenset({Op.CHAT, Op.COMPLETIONS, Op.EMBEDDINGS})

    def api_base(self, target: Target) -> str:
        base = super().api_base(target)
        return base if base.endswith("/v1") else base + "/v1"


_CHAT_EMBED = frozenset({Op.CHAT, Op.COMPLETIONS, Op.EMBEDDINGS})

# Default bases from each provider's API documentation.
OPENAI_COMPATIBLE: dict[str, type[OpenAICompatibleProvider]] = {
    "openai": OpenAICompatibleProvider,
    "text-completion-openai": _compat(
        "text-completion-openai",
        "OpenAI text completion",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
    ),
    "openai_like": _compat("openai_like", "OpenAI-compatible", None, None),
    "custom_openai": _compat("custom_openai", "Custom OpenAI", None, None),
    "hosted_vllm": _compat("hosted_vllm", "vLLM", None, "HOSTED_VLLM_API_KEY", ops=_CHAT_EMBED),
    "litellm_proxy": _compat("litellm_proxy", "LiteLLM proxy", None, "LITELLM_PROXY_API_KEY"),
    "lm_studio": _compat(
        "lm_studio", "LM Studio", "http://localhost:1234/v1", None, ops=_CHAT_EMBED
    ),
    "ollama": OllamaProvider,
    "ollama_chat": type("OllamaChatProvider", (OllamaProvider,), {"name": "ollama_chat"}),
    "groq": _compat(
        "groq", "Groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", ops=frozenset({Op.CHAT})
    ),
    "mistral": _compat(
        "mistral",
        "Mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        ops=frozenset({Op.CHAT, Op.EMBEDDINGS}),
    ),
    "deepseek": _compat(
        "deepseek",
        "DeepSeek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        ops=frozenset({Op.CHAT, Op.COMPLETIONS}),
    ),
    "together_ai": _compat(
        "together_ai",
        "Together AI",
        "https://api.together.xyz/v1",
        "TOGETHERAI_API_KEY",
        ops=_CHAT_EMBED,
    ),
    "openrouter": _compat(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        ops=frozenset({Op.CHAT, Op.COMPLETIONS}),
    ),
    "xai": _compat(
        "xai", "xAI", "https://api.x.ai/v1", "XAI_API_KEY", ops=frozenset({Op.CHAT, Op.COMPLETIONS})
    ),
    "fireworks_ai": _compat(
        "fireworks_ai",
        "Fireworks AI",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_AI_API_KEY",
        ops=_CHAT_EMBED,
    ),
    "perplexity": _compat(
        "perplexity",
        "Perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITYAI_API_KEY",
        ops=frozenset({Op.CHAT}),
    ),
    "deepinfra": _compat(
        "deepinfra",
        "DeepInfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
        ops=_CHAT_EMBED,
    ),
    "cerebras": _compat(
        "cerebras",
        "Cerebras",
        "https://api.cerebras.ai/v1",
        "CEREBRAS_API_KEY",
        ops=frozenset({Op.CHAT, Op.COMPLETIONS}),
    ),
    "sambanova": _compat(
        "sambanova",
        "SambaNova",
        "https://api.sambanova.ai/v1",
        "SAMBANOVA_API_KEY",
        ops=frozenset({Op.CHAT}),
    ),
    "nvidia_nim": _compat(
        "nvidia_nim",
        "NVIDIA NIM",
        "https://integrate.api.nvidia.com/v1",
        "NVIDIA_NIM_API_KEY",
        ops=_CHAT_EMBED,
    ),
}
