"""Microsoft Entra ID credentials for Azure OpenAI.

A deployment authenticates with, in order: a token the gateway fetched through the OAuth 2.0
client credentials flow (``tenant_id``, ``client_id`` and ``client_secret`` params), a static
Entra token (``azure_ad_token`` param), or the resource's API key (``api-key`` header).

Client credentials flow:
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
Token scope for Azure OpenAI ("Authorization: Bearer", scope ``.../.default``):
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#authentication
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple
from urllib.parse import quote, urlencode

from apps.providers.schemas import Target, UpstreamRequest

AUTHORITY_HOST = "https://login.microsoftonline.com"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
# Tokens without an expires_in are kept for five minutes only.
DEFAULT_TOKEN_LIFETIME_S = 300.0


class ClientCredentials(NamedTuple):
    tenant_id: str
    client_id: str
    client_secret: str
    scope: str
    authority: str


def _param(target: Target, name: str) -> str:
    value = target.params.get(name)
    return value.strip() if isinstance(value, str) else ""


def static_token(target: Target) -> str:
    """The ``azure_ad_token`` param, or "" when unset."""
    return _param(target, "azure_ad_token")


def client_credentials(target: Target) -> ClientCredentials | None:
    """The deployment's Entra app registration, or None unless all three parts are set.

    ``azure_scope`` overrides the scope and ``azure_authority_host`` the login host (sovereign
    clouds such as https://login.microsoftonline.us)."""
    tenant = _param(target, "tenant_id")
    client = _param(target, "client_id")
    secret = _param(target, "client_secret")
    if not (tenant and client and secret):
        return None
    return ClientCredentials(
        tenant_id=tenant,
        client_id=client,
        client_secret=secret,
        scope=_param(target, "azure_scope") or COGNITIVE_SERVICES_SCOPE,
        authority=(_param(target, "azure_authority_host") or AUTHORITY_HOST).rstrip("/"),
    )


def cache_key(creds: ClientCredentials) -> str:
    """Identifies the credentials without holding the secret itself."""
    digest = hashlib.sha256(creds.client_secret.encode()).hexdigest()[:24]
    return f"azure:{creds.authority}:{creds.tenant_id}:{creds.client_id}:{creds.scope}:{digest}"


def token_request(creds: ClientCredentials) -> UpstreamRequest:
    """POST {authority}/{tenant}/oauth2/v2.0/token with the form-encoded client credentials."""
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "scope": creds.scope,
        }
    )
    return UpstreamRequest(
        method="POST",
        url=f"{creds.authority}/{quote(creds.tenant_id, safe='')}/oauth2/v2.0/token",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
        },
        body=form.encode(),
    )
