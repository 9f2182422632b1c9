"""Shared helpers of the Gemini translation tests: targets, requests, recorded fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from apps.providers.gemini import GeminiProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "gemini"
provider = GeminiProvider()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def target(**kwargs: Any) -> Target:
    defaults: dict[str, Any] = {
        "deployment_id": "d1",
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "api_key": "test-key",
    }
    return Target(**{**defaults, **kwargs})


def chat(body: dict[str, Any], stream: bool = False, **kwargs: Any) -> CanonicalRequest:
    return CanonicalRequest(op=Op.CHAT, body={"model": "g", **body}, stream=stream, **kwargs)


def build(body: dict[str, Any], stream: bool = False, **target_kwargs: Any) -> dict[str, Any]:
    upstream = provider.build_request(chat(body, stream), target(**target_kwargs))
    return orjson.loads(upstream.body or b"{}")


USER = [{"role": "user", "content": "Hi"}]
