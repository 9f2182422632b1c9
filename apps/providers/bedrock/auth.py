"""Bedrock credentials and request signing.

A deployment authenticates with a Bedrock API key (sent as ``Authorization: Bearer``,
https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html) or with AWS access keys
(Signature Version 4, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4.html;
the service's signing name is ``bedrock``). The signature covers the exact URL, headers and body
bytes that are sent, so it is computed last, over the final request.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apps.core.errors import InvalidRequest
from apps.providers.schemas import Target

SIGNING_NAME = "bedrock"
# LiteLLM's region when neither the deployment nor the environment names one.
DEFAULT_REGION = "us-west-2"
_ENV_NAMES = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def aws_environment() -> dict[str, str]:
    """The standard AWS variables that are set, for deployments that configure none."""
    return {name: os.environ[name] for name in _ENV_NAMES if os.environ.get(name)}


@dataclass(frozen=True, slots=True)
class AwsAuth:
    """How to authenticate one request: a bearer token, or keys to sign with."""

    region: str
    bearer_token: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None


def _param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) and value else None


def _arn_region(model_id: str) -> str | None:
    # arn:aws:bedrock:<region>:<account>:<resource>
    parts = model_id.split(":")
    if len(parts) > 4 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


def resolve_auth(target: Target, model_id: str, env: Mapping[str, str]) -> AwsAuth:
    """Credentials from the deployment first, then the environment.

    Order: the deployment's api_key (a Bedrock API key), its aws_access_key_id /
    aws_secret_access_key, then AWS_BEARER_TOKEN_BEDROCK, then AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY. Raises InvalidRequest when there are none.
    """
    params = target.params
    region = (
        _param(params, "aws_region_name")
        or _arn_region(model_id)
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    if target.api_key:
        return AwsAuth(region=region, bearer_token=target.api_key)
    access_key = _param(params, "aws_access_key_id")
    secret_key = _param(params, "aws_secret_access_key")
    if access_key and secret_key:
        return AwsAuth(
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            session_token=_param(params, "aws_session_token"),
        )
    if access_key or secret_key:
        raise InvalidRequest(
            "Deployment of provider 'bedrock' sets only one of aws_access_key_id and "
            "aws_secret_access_key.",
            code="deployment_misconfigured",
        )
    if env.get("AWS_BEARER_TOKEN_BEDROCK"):
        return AwsAuth(region=region, bearer_token=env["AWS_BEARER_TOKEN_BEDROCK"])
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return AwsAuth(
            region=region,
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            session_token=env.get("AWS_SESSION_TOKEN"),
        )
    raise InvalidRequest(
        "Deployment of provider 'bedrock' has no credentials: set api_key (a Bedrock API key) "
        "or aws_access_key_id and aws_secret_access_key.",
        code="deployment_misconfigured",
    )


class _SigV4AtTime(SigV4Auth):
    """botocore's SigV4 signer with the clock passed in, so a signature is reproducible."""

    def __init__(
        self,
        credentials: Credentials,
        region: str,
        now: dt.datetime,
        service: str = SIGNING_NAME,
    ) -> None:
        super().__init__(credentials, service, region)
        self._now = now

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._now.strftime(SIGV4_TIMESTAMP)
        # Private botocore steps of SigV4Auth.add_auth, which botocore-stubs do not declare.
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        canonical = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)  # type: ignore[attr-defined]


def auth_headers(
    auth: AwsAuth,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus what authenticates the request (lower-case names).

    For SigV4 that is ``authorization``, ``x-amz-date`` and, with temporary credentials,
    ``x-amz-security-token``; every header given here is signed, so none may change later.
    """
    out = {name.lower(): value for name, value in headers.items()}
    if auth.bearer_token:
        out["authorization"] = f"Bearer {auth.bearer_token}"
        return out
    assert auth.access_key and auth.secret_key
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    request = AWSRequest(method=method, url=url, data=body, headers=out)
    credentials = Credentials(auth.access_key, auth.secret_key, auth.session_token)
    _SigV4AtTime(credentials, auth.region, when).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def sigv4_authorization(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    when: dt.datetime,
) -> str:
    """The ``Authorization`` value SigV4 gives a request whose ``headers`` are exactly the
    signed ones (``x-amz-date`` among them), signed at ``when``: what a server computes to
    check a client's signature."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    _SigV4AtTime(Credentials(access_key, secret_key), region, when, service).add_auth(request)
    return str(request.headers["Authorization"])
