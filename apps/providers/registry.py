"""Provider name -> translator. Adding a provider is one module plus its line in ``_PATHS``
and in ``_CHECKED`` (where the type checker verifies it implements ``Provider``).

Entries are dotted paths imported on first use, so one broken or heavy provider module never
slows or breaks the others.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from apps.providers.base import Provider
from apps.providers.openai_compat import OPENAI_COMPATIBLE

_PATHS: dict[str, str] = {
    "mock": "apps.providers.mock.MockProvider",
    "anthropic": "apps.providers.anthropic.AnthropicProvider",
    "azure": "apps.providers.azure.AzureOpenAIProvider",
    "azure_text": "apps.providers.azure.AzureTextProvider",
    "gemini": "apps.providers.gemini.GeminiProvider",
    "vertex_ai": "apps.providers.gemini.VertexAIProvider",
    "bedrock": "apps.providers.bedrock.BedrockProvider",
}

if TYPE_CHECKING:
    # Every class above implements the Provider protocol: the type checker verifies it here.
    from apps.providers.anthropic import AnthropicProvider
    from apps.providers.azure import AzureOpenAIProvider, AzureTextProvider
    from apps.providers.bedrock import BedrockProvider
    from apps.providers.gemini import GeminiProvider, VertexAIProvider
    from apps.providers.mock import MockProvider

    _CHECKED: tuple[type[Provider], ...] = (
        MockProvider,
        AnthropicProvider,
        AzureOpenAIProvider,
        AzureTextProvider,
        GeminiProvider,
        VertexAIProvider,
        BedrockProvider,
    )


class UnknownProvider(LookupError):
    pass


@cache
def get_provider(name: str) -> Provider:
    """The translator instance for ``name``. Raises UnknownProvider."""
    compat = OPENAI_COMPATIBLE.get(name)
    if compat is not None:
        return compat()
    path = _PATHS.get(name)
    if path is None:
        raise UnknownProvider(name)
    module_name, cls_name = path.rsplit(".", 1)
    cls: type[Provider] = getattr(importlib.import_module(module_name), cls_name)
    return cls()


def provider_names() -> list[str]:
    return sorted({*OPENAI_COMPATIBLE, *_PATHS})


def provider_choices() -> list[tuple[str, str]]:
    out = []
    for name in provider_names():
        provider = get_provider(name)
        out.append((name, provider.display_name or name))
    return out


def split_model(model: str) -> tuple[str, str]:
    """``provider/upstream-model`` -> (provider, upstream model). A bare name means OpenAI,
    as in LiteLLM configs. Raises UnknownProvider for an unknown prefix."""
    provider, sep, rest = model.partition("/")
    if sep and (provider in OPENAI_COMPATIBLE or provider in _PATHS):
        return provider, rest
    if sep:
        raise UnknownProvider(provider)
    return "openai", model
