"""Azure OpenAI's client-facing paths, so ``openai.AzureOpenAI(azure_endpoint=<gateway URL>,
api_key=<virtual key>, api_version=...)`` works unchanged.

- ``POST /openai/deployments/{deployment}/chat/completions|completions|embeddings``: the
  deployment segment names the model group and wins over the body's ``model``; the
  ``api-version`` query the Azure SDKs always send is accepted whatever its value.
- ``POST /openai/v1/chat/completions|completions|embeddings``: Azure's v1 API, which is
  OpenAI's with the model in the body.

Callers authenticate with the ``api-key`` header (or ``Authorization: Bearer``, as Entra ID
clients do); answers and errors are OpenAI's, which is also Azure's shape.
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference and
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/latest
"""

from __future__ import annotations

from apps.providers.schemas import Op

# Model group names may hold slashes (the SDK sends them percent-encoded; the ASGI path arrives
# decoded), so the deployment segment runs up to the operation suffix.
DEPLOYMENT_PATHS = (
    (Op.CHAT, r"^/openai/deployments/(?P<deployment>.+)/chat/completions/?$"),
    (Op.COMPLETIONS, r"^/openai/deployments/(?P<deployment>.+)(?<!/chat)/completions/?$"),
    (Op.EMBEDDINGS, r"^/openai/deployments/(?P<deployment>.+)/embeddings/?$"),
)
V1_PATHS = (
    (Op.CHAT, "/openai/v1/chat/completions"),
    (Op.COMPLETIONS, "/openai/v1/completions"),
    (Op.EMBEDDINGS, "/openai/v1/embeddings"),
)
