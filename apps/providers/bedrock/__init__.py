"""AWS Bedrock (Converse API) provider."""

from __future__ import annotations

from apps.providers.bedrock.provider import BedrockProvider

__all__ = ["BedrockProvider"]
