"""AWS Bedrock through the Converse and ConverseStream APIs.

POST {endpoint}/model/{modelId}/converse (JSON) and /converse-stream (binary event stream),
endpoint ``https://bedrock-runtime.{region}.amazonaws.com`` unless the deployment sets api_base
(or LiteLLM's ``aws_bedrock_runtime_endpoint``).
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import ClassVar

import orjson

from apps.core.errors import UpstreamError
from apps.providers import urls
from apps.providers.base import BaseProvider
from apps.providers.bedrock import errors
from apps.providers.bedrock.auth import auth_headers, aws_environment, resolve_auth
from apps.providers.bedrock.request import CHAT_PARAMS, build_payload
from apps.providers.bedrock.response import parse_converse
from apps.providers.bedrock.stream import BedrockStreamDecoder
from apps.providers.schemas import (
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    Target,
    UpstreamRequest,
)

# LiteLLM's route prefix for the Converse API: ``bedrock/converse/<model id>``.
_ROUTE_PREFIX = "converse/"
# RFC 3986 pchar: sub-delims, ":" and "@" (unreserved characters are always kept by quote).


def model_id(target: Target) -> str:
    return target.model.removeprefix(_ROUTE_PREFIX)


def model_path(model: str) -> str:
    """The modelId as one path segment: ``/`` (in ARNs) and non-ASCII are escaped, the other
    characters RFC 3986 allows in a segment (``:`` in every versioned id) stay literal.

    HTTP clients normalise paths (yarl turns ``%3A`` back into ``:``), and the signature must
    cover the path exactly as sent, so the URL is built already in that normal form."""
    return urls.segment(model, "model id", allow_slash=True)


class BedrockProvider(BaseProvider):
    name: ClassVar[str] = "bedrock"
    display_name: ClassVar[str] = "AWS Bedrock"
    ops = frozenset({Op.CHAT})
    chat_params = CHAT_PARAMS
    # Credentials are resolved here (API key or SigV4), never by the generic key lookup.
    api_key_env: ClassVar[str | None] = None

    def endpoint(self, target: Target, region: str) -> str:
        base = target.api_base or target.params.get("aws_bedrock_runtime_endpoint")
        if isinstance(base, str) and base:
            return base.rstrip("/")
        return f"https://bedrock-runtime.{region}.amazonaws.com"

    def build_payload(self, request: CanonicalRequest, target: Target) -> JSONDict:
        return build_payload(self.filter_params(request, target, CHAT_PARAMS))

    def build_request(
        self, request: CanonicalRequest, target: Target, *, now: dt.datetime | None = None
    ) -> UpstreamRequest:
        """The signed Converse (or ConverseStream) request. ``now`` fixes the signing clock."""
        self.check_op(request)
        payload = self.build_payload(request, target)
        body = orjson.dumps(payload)
        model = model_id(target)
        auth = resolve_auth(target, model, aws_environment())
        action = "converse-stream" if request.stream else "converse"
        url = urls.join(self.endpoint(target, auth.region), f"/model/{model_path(model)}/{action}")
        headers = {"content-type": "application/json", **dict(target.headers)}
        return UpstreamRequest(
            method="POST",
            url=url,
            headers=auth_headers(auth, "POST", url, headers, body, now),
            body=body,
        )

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result:
        return parse_converse(body, target.model)

    def new_stream_decoder(self, request: CanonicalRequest, target: Target) -> BedrockStreamDecoder:
        return BedrockStreamDecoder(target.model)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return errors.parse_error(status, body, headers)
