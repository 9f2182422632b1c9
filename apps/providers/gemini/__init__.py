"""Google's Gemini models: the Gemini API (``gemini``) and Vertex AI (``vertex_ai``)."""

from __future__ import annotations

from apps.providers.gemini.provider import GeminiProvider, VertexAIProvider

__all__ = ["GeminiProvider", "VertexAIProvider"]
