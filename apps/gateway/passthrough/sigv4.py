"""The gateway key of a boto3 client, from its SigV4-signed request.

boto3 signs every request with an access key id and a secret access key. A client of the
gateway sets both to its gateway key (``aws_access_key_id=aws_secret_access_key=<key>``): the
access key id names the key, and the gateway recomputes the signature with the key as the
secret over what it received (method, path as sent, query, the signed headers, body), so a
request altered on the way or replayed later than ``MAX_SKEW`` is refused. The key travels in
the clear in the ``Credential=`` part anyway (as in a bearer header): the check adds integrity
and freshness, not secrecy. Clients may also send the key as ``Authorization: Bearer`` (boto3
does with ``AWS_BEARER_TOKEN_BEDROCK``). https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4.html
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

from botocore.auth import SIGV4_TIMESTAMP

from apps.core.errors import AuthenticationError
from apps.gateway.http import Request
from apps.keys.auth import bearer_token
from apps.providers.bedrock.auth import sigv4_authorization

ALGORITHM = "AWS4-HMAC-SHA256"
# AWS refuses requests signed more than 15 minutes away from its clock.
MAX_SKEW = dt.timedelta(minutes=15)
_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9\-;.]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True, slots=True)
class Signature:
    key: str
    date: str
    region: str
    service: str
    signed: tuple[str, ...]
    signature: str


def parse(header: str) -> Signature | None:
    """The parts of a SigV4 ``Authorization`` value; None when it is not one."""
    found = _HEADER.fullmatch(header.strip())
    if found is None:
        return None
    return Signature(
        key=found["key"],
        date=found["date"],
        region=found["region"],
        service=found["service"],
        signed=tuple(found["signed"].split(";")),
        signature=found["signature"],
    )


def _refused(message: str) -> AuthenticationError:
    return AuthenticationError(f"SigV4 signature refused: {message}", code="invalid_signature")


def verify(req: Request, sig: Signature, now: dt.datetime | None = None) -> str:
    """The gateway key of a signed request (its body already read). Raises
    AuthenticationError when the signature does not match or is stale."""
    if "host" not in sig.signed or "x-amz-date" not in sig.signed:
        raise _refused("the host and x-amz-date headers must be signed.")
    stamp = req.header(b"x-amz-date") or ""
    try:
        when = dt.datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        raise _refused("x-amz-date is missing or malformed.") from None
    if stamp[:8] != sig.date:
        raise _refused("the credential date is not the x-amz-date's.")
    current = now or dt.datetime.now(dt.UTC)
    if abs(current - when) > MAX_SKEW:
        raise _refused("the request was signed more than 15 minutes from the gateway's clock.")
    headers = {name: req.header(name.encode()) or "" for name in sig.signed}
    raw_path = req.scope.get("raw_path") or req.path.encode()
    query = req.scope.get("query_string", b"")
    url = f"http://{headers['host']}{raw_path.decode('latin-1')}"
    if query:
        url += "?" + query.decode("latin-1")
    expected = sigv4_authorization(
        method=req.method,
        url=url,
        headers=headers,
        body=req.body,
        access_key=sig.key,
        secret_key=sig.key,
        region=sig.region,
        service=sig.service,
        when=when.replace(tzinfo=None),
    )
    found = parse(expected)
    if found is None or not hmac.compare_digest(found.signature, sig.signature):
        raise _refused(
            "it does not match the request. Set both aws_access_key_id and "
            "aws_secret_access_key to the gateway key."
        )
    return sig.key


def bedrock_token(req: Request) -> str | None:
    """The gateway key of a Bedrock runtime request: a verified SigV4 access key id, or a
    bearer token."""
    header = req.header(b"authorization")
    if not header:
        return None
    if header.startswith(ALGORITHM):
        sig = parse(header)
        if sig is None:
            raise _refused("the Authorization header is malformed.")
        return verify(req, sig)
    return bearer_token(header)
