"""The ``azure`` provider: Azure OpenAI chat, completions and embeddings.

Bodies, responses and streams are OpenAI's, so everything but the URL, the credentials and the
error mapping is inherited from the OpenAI translator. ``target.model`` is the Azure deployment
name and ``api_base`` the resource endpoint (``https://<resource>.openai.azure.com``).

- Dated API versions: ``POST {api_base}/openai/deployments/{deployment}/chat/completions
  ?api-version={version}`` (also ``/completions`` and ``/embeddings``),
  https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference
- The v1 API (``api_version`` "v1", or "preview"/"latest" for preview features):
  ``POST {api_base}/openai/v1/chat/completions``, deployment name in the body's ``model``,
  https://learn.microsoft.com/en-us/azure/ai-foundry/openai/latest and
  https://learn.microsoft.com/en-us/azure/ai-foundry/openai/api-version-lifecycle
- Azure adds ``prompt_filter_results`` and per-choice ``content_filter_results``, and may open a
  stream with a chunk whose ``choices`` is empty; all of it is relayed untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from apps.core.errors import UpstreamError
from apps.providers import urls
from apps.providers.azure import auth
from apps.providers.azure.errors import azure_error
from apps.providers.base import SupportsTokenAuth, parse_access_token
from apps.providers.openai_compat import OpenAICompatibleProvider
from apps.providers.schemas import CanonicalRequest, JSONDict, Op, Target, UpstreamRequest

# The latest GA dated version of the inference API, used when a deployment sets none.
DEFAULT_API_VERSION = "2024-10-21"
# api_version values that select the v1 API instead of a dated one.
V1_VERSIONS = frozenset({"v1", "preview", "latest"})

_PATHS = {
    Op.CHAT: "/chat/completions",
    Op.COMPLETIONS: "/completions",
    Op.EMBEDDINGS: "/embeddings",
}
_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})(-preview)?")


def api_version_of(target: Target) -> str:
    return (target.api_version or "").strip() or DEFAULT_API_VERSION


def stream_usage_supported(api_version: str) -> bool:
    """Whether the API version takes ``stream_options.include_usage``.

    The v1 API follows OpenAI's; among dated versions the option first appears in
    2024-09-01-preview and in the 2024-10-21 GA spec (``chatCompletionStreamOptions``,
    https://github.com/Azure/azure-rest-api-specs/blob/main/specification/cognitiveservices/
    data-plane/AzureOpenAI/inference/stable/2024-10-21/inference.json). Older versions answer
    400 "Unknown parameter: 'stream_options'", so it is not sent to them. Unknown version
    formats are assumed to be newer than this rule."""
    version = api_version.strip().lower()
    if version in V1_VERSIONS:
        return True
    match = _DATED.fullmatch(version)
    if match is None:
        return True
    date, preview = match.groups()
    return date >= ("2024-09-01" if preview else "2024-10-21")


class AzureOpenAIProvider(OpenAICompatibleProvider):
    """Azure OpenAI; also a ``SupportsTokenAuth`` provider for Entra ID client credentials."""

    name: ClassVar[str] = "azure"
    display_name: ClassVar[str] = "Azure OpenAI"
    ops = frozenset({Op.CHAT, Op.COMPLETIONS, Op.EMBEDDINGS})
    default_api_base: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = "AZURE_API_KEY"
    # Per API version, see stream_usage_supported; True is the class-level default.
    supports_stream_usage: ClassVar[bool] = True

    def resource_base(self, target: Target) -> tuple[str, bool]:
        """(resource endpoint without any ``/openai`` suffix, whether the base names the v1
        API). Bases copied from SDK settings often end in ``/openai`` or ``/openai/v1``."""
        base = self.api_base(target)
        path = urls.path_of(base)
        for suffix, v1 in (("/openai/v1", True), ("/openai", False)):
            if path.endswith(suffix):
                return urls.with_path(base, path[: -len(suffix)]), v1
        return base, False

    def url(self, op: Op, target: Target) -> str:
        base, v1_base = self.resource_base(target)
        version = api_version_of(target)
        if v1_base or version.lower() in V1_VERSIONS:
            # The v1 API needs no api-version; "preview" opts in to preview features.
            preview = version.lower() in ("preview", "latest")
            query = f"api-version={version.lower()}" if preview else ""
            return urls.join(base, f"/openai/v1{_PATHS[op]}", query)
        deployment = urls.segment(target.model, "deployment name")
        return urls.join(
            base,
            f"/openai/deployments/{deployment}{_PATHS[op]}",
            f"api-version={quote(version, safe='')}",
        )

    def auth_headers(self, target: Target) -> dict[str, str]:
        """Entra ID bearer token when one is configured or was fetched, else ``api-key``."""
        token = target.access_token or auth.static_token(target)
        if token:
            return {"authorization": f"Bearer {token}"}
        if target.api_key:
            return {"api-key": target.api_key}
        return {}

    def build_payload(self, request: CanonicalRequest, target: Target) -> JSONDict:
        payload = super().build_payload(request, target)
        if request.stream and not stream_usage_supported(api_version_of(target)):
            payload.pop("stream_options", None)
        return payload

    def build_request(self, request: CanonicalRequest, target: Target) -> UpstreamRequest:
        self.check_op(request)
        return super().build_request(request, target)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return azure_error(self.name, status, body, headers)

    # SupportsTokenAuth: Entra ID client credentials.

    @property
    def token_auth(self) -> SupportsTokenAuth:
        return self

    def token_cache_key(self, target: Target) -> str | None:
        """None unless the deployment authenticates with an Entra app registration; a static
        ``azure_ad_token`` takes precedence over it."""
        if auth.static_token(target):
            return None
        creds = auth.client_credentials(target)
        return auth.cache_key(creds) if creds is not None else None

    def build_token_request(self, target: Target, now: float) -> UpstreamRequest:
        creds = auth.client_credentials(target)
        if creds is None:
            raise UpstreamError(
                f"{self.name} error: the deployment has no Entra ID client credentials.",
                http_status=500,
                retryable=False,
            )
        return auth.token_request(creds)

    def parse_token_response(self, body: bytes, now: float) -> tuple[str, float]:
        return parse_access_token(
            self.name, body, now, default_lifetime_s=auth.DEFAULT_TOKEN_LIFETIME_S
        )
