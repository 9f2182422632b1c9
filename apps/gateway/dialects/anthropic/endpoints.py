"""Anthropic-compatible inbound API: ``POST /v1/messages`` and ``/v1/messages/count_tokens``
(each also without ``/v1``), so the official Anthropic SDK works against the gateway.

Requests are translated to the canonical (OpenAI) format and routed to any model; answers,
streams and errors go back in Anthropic's format. A deployment whose provider speaks the
Messages API natively gets the client's body untranslated and its answer is relayed as is.
Formats: https://docs.anthropic.com/en/api/messages, /en/api/messages-streaming,
/en/api/errors, /en/api/messages-count-tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

import orjson

from apps.core.errors import GatewayError, InvalidRequest
from apps.gateway import tokens, upstream
from apps.gateway.call import Call
from apps.gateway.dialects.anthropic.dialect import (
    ANTHROPIC,
    NATIVE_FORMAT,
    parse_messages,
    parse_messages_headers,
)
from apps.gateway.dialects.anthropic.request import anthropic_request_to_openai
from apps.gateway.dialects.base import parse_json
from apps.gateway.endpoints import new_request_id, serve_call, token_of
from apps.gateway.http import Request, send_response
from apps.keys.auth import authenticate
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, JSONDict, Op
from apps.routing.selectors import candidates_for


async def messages(req: Request) -> None:
    call = Call(request_id=new_request_id(), call_type="messages", dialect=ANTHROPIC)
    await serve_call(call, req, lambda raw: parse_messages(raw, req))


def _estimate_input_tokens(body: JSONDict) -> int:
    """Roughly four characters per token over the text the model reads: used only when the
    model's provider has no token-counting API of its own."""
    text = orjson.dumps(
        {k: body.get(k) for k in ("system", "messages", "tools") if body.get(k) is not None}
    )
    return max(1, math.ceil(len(text) / 4))


async def _count(call: Call, body: JSONDict, client_headers: Mapping[str, str]) -> bytes:
    """The first deployment of the group whose provider counts tokens itself answers; with
    none, the count is estimated. Upstream failures are scrubbed like any other call's."""
    assert call.principal is not None
    _group, candidates = await candidates_for(principal=call.principal, model=body["model"])
    for candidate in candidates:
        provider = get_provider(candidate.target.provider)
        native, counter = provider.native, provider.count_tokens
        if native is None or native.native_format != NATIVE_FORMAT or counter is None:
            continue
        call.candidate = candidate
        target = await tokens.with_token(provider, candidate.target)
        upstream_req = counter.build_count_tokens_request(body, target, client_headers)
        resp = await upstream.send(upstream_req, target=target)
        if resp.status >= 400:
            raise provider.parse_error(resp.status, resp.body, resp.headers)
        return resp.body
    return orjson.dumps({"input_tokens": _estimate_input_tokens(body)})


async def count_tokens(req: Request) -> None:
    """Anthropic deployments count with the upstream's own endpoint; others are estimated.
    Like every call it leaves one usage row (counting costs nothing)."""
    call = Call(request_id=new_request_id(), call_type="count_tokens", dialect=ANTHROPIC)
    try:
        raw = await req.read_body()
        call.principal = await authenticate(token_of(req))
        body = parse_json(raw)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("'model' is required.", param="model")
        probe = dict(body)
        probe.setdefault("max_tokens", 1)
        # Validates the body like /v1/messages would, and names the call's model group.
        call.request = CanonicalRequest(op=Op.CHAT, body=anthropic_request_to_openai(probe))
        call.group_name = model
        client_headers = parse_messages_headers(req)
        payload = await _count(call, body, client_headers)
        await send_response(req.send, 200, payload, call.response_headers())
    except GatewayError as err:
        call.failed(err)
        status, payload_bytes = ANTHROPIC.error(err)
        await send_response(req.send, status, payload_bytes, call.response_headers())
    finally:
        call.finish(Decimal(0))
