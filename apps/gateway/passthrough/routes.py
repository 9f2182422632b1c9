"""The pass-through paths in the gateway's route table.

The Anthropic, OpenAI and Azure SDKs, pointed at ``<gateway>/anthropic``, ``<gateway>/openai``
or ``<gateway>/azure``, reach the gateway's own Messages and OpenAI endpoints: their formats
are client dialects already, answered natively by deployments of that provider (bytes relayed)
and translated for the others. Gemini, Vertex AI and Bedrock are relayed natively.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.gateway import info
from apps.gateway.dialects import azure
from apps.gateway.dialects.anthropic import endpoints as anthropic
from apps.gateway.dialects.openai.endpoints import model_in_path_handler, openai_handler
from apps.gateway.passthrough.bedrock import BEDROCK_PATH, bedrock_passthrough
from apps.gateway.passthrough.google import (
    GEMINI_PATH,
    VERTEX_PATH,
    gemini_passthrough,
    vertex_passthrough,
)
from apps.providers.schemas import Op

if TYPE_CHECKING:
    from apps.gateway.routes import RouteTable

_OPENAI_OPS = (
    (Op.CHAT, "/chat/completions"),
    (Op.COMPLETIONS, "/completions"),
    (Op.EMBEDDINGS, "/embeddings"),
    (Op.MODERATIONS, "/moderations"),
)


def register(table: RouteTable) -> None:
    # Anthropic SDK: base_url=<gateway>/anthropic sends /anthropic/v1/messages.
    for prefix in ("/anthropic/v1", "/anthropic"):
        table.add(prefix + "/messages", "POST", anthropic.messages, v1_alias=False)
        table.add(prefix + "/messages/count_tokens", "POST", anthropic.count_tokens, v1_alias=False)
    # OpenAI SDK: base_url=<gateway>/openai (or /openai/v1).
    for prefix in ("/openai", "/openai/v1"):
        for op, path in _OPENAI_OPS:
            if prefix + path not in table.paths:
                table.add(prefix + path, "POST", openai_handler(op), v1_alias=False)
        table.add(prefix + "/models", "GET", info.list_models, v1_alias=False)
    # AzureOpenAI(azure_endpoint=<gateway>/azure): Azure's paths under /azure.
    for op, pattern in azure.DEPLOYMENT_PATHS:
        table.add_pattern(
            pattern.replace("^/openai/", "^/azure/openai/"),
            "POST",
            model_in_path_handler(op, "deployment"),
        )
    for op, path in azure.V1_PATHS:
        table.add("/azure" + path, "POST", openai_handler(op), v1_alias=False)
    # Native formats, relayed.
    table.add_pattern(GEMINI_PATH, "POST", gemini_passthrough)
    table.add_pattern(VERTEX_PATH, "POST", vertex_passthrough)
    table.add_pattern(BEDROCK_PATH, "POST", bedrock_passthrough)
