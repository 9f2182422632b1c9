"""Google OAuth 2.0 access tokens for Vertex AI, built from a deployment's credentials JSON.

A service account key signs a JWT (RS256) and trades it at its ``token_uri`` with the JWT
bearer grant; an ``authorized_user`` file (gcloud user credentials) uses its refresh token.
The gateway sends the request, caches the token and passes it back as ``Target.access_token``.
https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
https://developers.google.com/identity/protocols/oauth2/web-server#offline
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from functools import lru_cache
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apps.core.errors import InvalidRequest
from apps.providers.schemas import JSONDict, UpstreamRequest

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Google accepts assertions valid for at most one hour.
ASSERTION_LIFETIME_S = 3600


def _misconfigured(message: str) -> InvalidRequest:
    return InvalidRequest(f"vertex_ai: {message}", code="deployment_misconfigured")


def load_credentials(raw: Any) -> JSONDict | None:
    """The credentials dict from ``vertex_credentials`` (a JSON string or a dict), None when
    unset. Raises InvalidRequest when it is not usable; the message never quotes it."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _misconfigured(
                "vertex_credentials must hold the credentials JSON itself "
                "(a file path is not read by the gateway)."
            ) from None
    if not isinstance(raw, dict):
        raise _misconfigured("vertex_credentials must be a JSON object.")
    kind = raw.get("type", "service_account")
    needed = {
        "service_account": ("client_email", "private_key"),
        "authorized_user": ("client_id", "client_secret", "refresh_token"),
    }.get(str(kind))
    if needed is None:
        raise _misconfigured(f"credentials of type '{kind}' are not supported.")
    missing = [name for name in needed if not raw.get(name)]
    if missing:
        raise _misconfigured(f"vertex_credentials lacks {', '.join(missing)}.")
    return raw


def cache_key(credentials: JSONDict) -> str:
    """A stable key naming the identity, not revealing any secret."""
    identity = [
        str(credentials.get("type", "service_account")),
        str(credentials.get("client_email") or credentials.get("client_id")),
        str(credentials.get("private_key_id") or ""),
        str(credentials.get("token_uri") or DEFAULT_TOKEN_URI),
        hashlib.sha256(
            str(credentials.get("private_key") or credentials.get("refresh_token")).encode()
        ).hexdigest(),
    ]
    return "vertex_ai:" + hashlib.sha256("\n".join(identity).encode()).hexdigest()[:40]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@lru_cache(maxsize=32)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise _misconfigured("the service account private_key is not a PEM RSA key.") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _misconfigured("the service account private_key is not an RSA key.")
    return key


def signed_assertion(credentials: JSONDict, now: float, scope: str = SCOPE) -> str:
    """The RS256-signed JWT a service account presents at its token endpoint."""
    header: JSONDict = {"alg": "RS256", "typ": "JWT"}
    if credentials.get("private_key_id"):
        header["kid"] = str(credentials["private_key_id"])
    issued = int(now)
    claims = {
        "iss": credentials["client_email"],
        "scope": scope,
        "aud": credentials.get("token_uri") or DEFAULT_TOKEN_URI,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_S,
    }
    signing_input = f"{_b64url(orjson.dumps(header))}.{_b64url(orjson.dumps(claims))}"
    signature = _private_key(str(credentials["private_key"])).sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64url(signature)}"


def token_request(credentials: JSONDict, now: float) -> UpstreamRequest:
    token_uri = str(credentials.get("token_uri") or DEFAULT_TOKEN_URI)
    if credentials.get("type") == "authorized_user":
        form = {
            "grant_type": "refresh_token",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
            "refresh_token": credentials["refresh_token"],
        }
    else:
        form = {"grant_type": JWT_BEARER, "assertion": signed_assertion(credentials, now)}
    return UpstreamRequest(
        method="POST",
        url=token_uri,
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urllib.parse.urlencode(form).encode(),
    )
