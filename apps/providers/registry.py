"""Provider name -> translator. Adding a provider is one line here plus one module.

Entries are dotted paths imported on first use, so one broken or heavy provider module never
slows or breaks the others.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from typing import Any

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


class UnknownProvider(LookupError):
    pass


def _importable(path: str) -> bool:
    module = path.rsplit(".", 1)[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@cache
def get_provider(name: str) -> Any:
    """The translator instance for ``name``. Raises UnknownProvider."""
    compat = OPENAI_COMPATIBLE.get(name)
    if compat is not None:
        return compat()
    path = _PATHS.get(name)
    if path is None or not _importable(path):
        raise UnknownProvider(name)
    module_name, cls_name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), cls_name)()


def provider_names() -> list[str]:
    names = list(OPENAI_COMPATIBLE) + [n for n, p in _PATHS.items() if _importable(p)]
    return sorted(set(names))


def provider_choices() -> list[tuple[str, str]]:
    out = []
    for name in provider_names():
        provider = get_provider(name)
        out.append((name, getattr(provider, "display_name", "") or name))
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
