"""Checking a boto3 client's SigV4 signature made with its gateway key."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apps.core.errors import AuthenticationError
from apps.gateway.http import Request
from apps.gateway.passthrough import sigv4

KEY = "sk-gateway-key-abcdefghijklmnop"
PATH = "/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
BODY = b'{"messages": []}'


def signed(secret: str = KEY, body: bytes = BODY, path: str = PATH) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=f"http://gw.example:4000{path}",
        data=body,
        headers={"content-type": "application/json"},
    )
    SigV4Auth(Credentials(KEY, secret), "bedrock", "us-east-1").add_auth(request)
    headers = {k.lower(): str(v) for k, v in request.headers.items()}
    headers["host"] = "gw.example:4000"
    return headers


def received(headers: dict[str, str], body: bytes = BODY, raw_path: str = PATH) -> Request:
    scope: dict[str, Any] = {
        "method": "POST",
        "path": raw_path.replace("%3A", ":"),
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    req = Request(scope, None, None)  # type: ignore[arg-type]
    req.body = body
    return req


def test_valid_signature_names_the_key() -> None:
    assert sigv4.bedrock_token(received(signed())) == KEY


def test_bearer_token() -> None:
    assert sigv4.bedrock_token(received({"authorization": f"Bearer {KEY}"})) == KEY


def test_other_secret_is_refused() -> None:
    with pytest.raises(AuthenticationError, match="does not match"):
        sigv4.bedrock_token(received(signed(secret="another-secret")))


def test_altered_body_is_refused() -> None:
    with pytest.raises(AuthenticationError, match="does not match"):
        sigv4.bedrock_token(received(signed(), body=b'{"messages": [1]}'))


def test_stale_signature_is_refused() -> None:
    headers = signed()
    sig = sigv4.parse(headers["authorization"])
    assert sig is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    with pytest.raises(AuthenticationError, match="15 minutes"):
        sigv4.verify(received(headers), sig, now=later)


def test_unsigned_host_is_refused() -> None:
    headers = signed()
    headers["authorization"] = headers["authorization"].replace(
        "SignedHeaders=", "SignedHeaders=x;"
    )
    headers["authorization"] = headers["authorization"].replace(";host;", ";").replace("host;", "")
    with pytest.raises(AuthenticationError):
        sigv4.bedrock_token(received(headers))


def test_malformed_header_is_refused() -> None:
    with pytest.raises(AuthenticationError, match="malformed"):
        sigv4.bedrock_token(received({"authorization": "AWS4-HMAC-SHA256 nonsense"}))
