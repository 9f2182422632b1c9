"""Azure OpenAI: OpenAI's wire format at Azure's URLs, with Azure's credentials.

``azure`` serves chat, completions and embeddings; ``azure_text`` is the legacy completions
variant that also answers chat requests through a completions deployment.
"""

from __future__ import annotations

from apps.providers.azure.provider import AzureOpenAIProvider
from apps.providers.azure.text import AzureTextProvider

__all__ = ["AzureOpenAIProvider", "AzureTextProvider"]
