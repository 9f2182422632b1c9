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

import orjson

from apps.core.errors import GatewayError, InvalidRequest
from apps.gateway import upstream
from apps.gateway.call import Call
from apps.gateway.dialects.anthropic.dialect import ANTHROPIC, NATIVE_FORMAT, parse_messages
from apps.gateway.dialects.anthropic.request import anthropic_request_to_openai
from apps.gateway.dialects.base import parse_json
from apps.gateway.endpoints import authenticated, new_request_id, serve_call
from apps.gateway.http import Request, send_response
from apps.providers.registry import get_provider
from apps.providers.schemas import JSONDict
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


async def count_tokens(req: Request) -> None:
    """Anthropic deployments count with the upstream's own endpoint; others are estimated."""
    principal = await authenticated(req, ANTHROPIC)
    if principal is None:
        return
    try:
        raw = await req.read_body()
        body = parse_json(raw)
        probe = dict(body)
        probe.setdefault("max_tokens", 1)
        anthropic_request_to_openai(probe)  # validates the body like /v1/messages would
        _group, candidates = await candidates_for(principal=principal, model=body["model"])
        for candidate in candidates:
            provider = get_provider(candidate.target.provider)
            native, counter = provider.native, provider.count_tokens
            if native is not None and native.native_format == NATIVE_FORMAT and counter:
                upstream_req = counter.build_count_tokens_request(body, candidate.target)
                resp = await upstream.send(upstream_req, target=candidate.target)
                if resp.status >= 400:
                    raise provider.parse_error(resp.status, resp.body, resp.headers)
                await send_response(req.send, 200, resp.body)
                return
        payload = {"input_tokens": _estimate_input_tokens(body)}
        await send_response(req.send, 200, orjson.dumps(payload))
    except GatewayError as err:
        status, payload_bytes = ANTHROPIC.error(err)
        await send_response(req.send, status, payload_bytes)
    except (KeyError, TypeError):
        missing = InvalidRequest("'model' is required.", param="model")
        status, payload_bytes = ANTHROPIC.error(missing)
        await send_response(req.send, status, payload_bytes)
