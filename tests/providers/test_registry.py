"""The registry: every provider name resolves to a translator, and each declares exactly the
optional capabilities it has (the gateway never probes for them)."""

from __future__ import annotations

import pytest

from apps.providers.registry import UnknownProvider, get_provider, provider_names
from apps.providers.schemas import CanonicalRequest, Op, Target

LOCAL = {"mock"}
NATIVE = {"anthropic"}
COUNTS_TOKENS = {"anthropic"}
TOKEN_AUTH = {"azure", "azure_text", "vertex_ai"}
# Upstreams whose chat stream is OpenAI's own format, passed on as bytes.
RELAYS_CHAT = {"openai", "azure"}


def _chat(name: str) -> tuple[CanonicalRequest, Target]:
    request = CanonicalRequest(op=Op.CHAT, body={"model": "m"}, stream=True)
    return request, Target(deployment_id="d", provider=name, model="m")


@pytest.mark.parametrize("name", provider_names())
def test_capabilities_are_declared_as_the_provider_itself_or_none(name: str) -> None:
    provider = get_provider(name)
    assert provider.name == name
    declared = {
        "local": provider.local,
        "native": provider.native,
        "count_tokens": provider.count_tokens,
        "token_auth": provider.token_auth,
    }
    expected = {
        "local": name in LOCAL,
        "native": name in NATIVE,
        "count_tokens": name in COUNTS_TOKENS,
        "token_auth": name in TOKEN_AUTH,
    }
    for capability, value in declared.items():
        assert value is (provider if expected[capability] else None), capability


@pytest.mark.parametrize("name", sorted(RELAYS_CHAT | {"anthropic", "gemini", "azure_text"}))
def test_relay_decoder_only_for_openai_format_streams(name: str) -> None:
    request, target = _chat(name)
    relay = get_provider(name).new_relay_decoder(request, target)
    assert (relay is not None) is (name in RELAYS_CHAT)


def test_azure_text_relays_completions_but_translates_chat() -> None:
    provider = get_provider("azure_text")
    _, target = _chat("azure_text")
    completions = CanonicalRequest(op=Op.COMPLETIONS, body={"model": "m"}, stream=True)
    assert provider.new_relay_decoder(completions, target) is not None


def test_unknown_name_is_refused() -> None:
    with pytest.raises(UnknownProvider):
        get_provider("no-such-provider")
