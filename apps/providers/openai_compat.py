"""OpenAI and every OpenAI-compatible API: the body is forwarded untouched except for the
upstream model name, unknown parameters included; responses are relayed as bytes.

API reference: https://platform.openai.com/docs/api-reference/chat
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from apps.core.errors import UpstreamError
from apps.providers import urls
from apps.providers.base import (
    BaseProvider,
    StreamDecoder,
    finish_payload,
    parse_json_object,
)
from apps.providers.errors import error_from_openai_body
from apps.providers.openai_stream import OpenAIStreamDecoder
from apps.providers.schemas import (
    GATEWAY_ONLY_FIELDS,
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    Target,
    UpstreamRequest,
    Usage,
)

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
        return urls.join(self.api_base(target), _PATHS[op])

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
        finish_payload(payload, body, target)
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
        return base if urls.path_of(base).endswith("/v1") else urls.join(base, "/v1")


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
