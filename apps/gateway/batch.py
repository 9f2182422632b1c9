"""Batch completions: ``model: "a,b,c"`` on ``/chat/completions`` asks each model group at
once and answers with a JSON list of completions, an error object in place of a failed one
(LiteLLM's batch completion across models).

Each model is a call of its own (admission against limits and budgets, routing, retries,
fallbacks as for any call, one usage row each, request id ``<id>-<n>``); the batch itself
leaves no row, unless it is refused as a whole (a model not served or not allowed, a stream).
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

from apps.core.errors import GatewayError, InvalidRequest
from apps.gateway import admission, pipeline
from apps.gateway.call import Call
from apps.gateway.http import Send, send_response
from apps.providers.schemas import CanonicalRequest, Op
from apps.routing.selectors import resolve_group, routing_table

MAX_MODELS = 10


def models_of(request: CanonicalRequest) -> list[str] | None:
    """The models of a batch request, or None when the request names one model."""
    model = request.body.get("model")
    if request.op is not Op.CHAT or not isinstance(model, str) or "," not in model:
        return None
    names = [name.strip() for name in model.split(",")]
    if not all(names):
        raise InvalidRequest(
            "Invalid 'model': a batch completion lists model names separated by commas, "
            "none of them empty.",
            param="model",
            code="invalid_value",
        )
    if len(names) > MAX_MODELS:
        raise InvalidRequest(
            f"Invalid 'model': a batch completion asks at most {MAX_MODELS} models.",
            param="model",
            code="invalid_value",
        )
    if request.stream:
        raise InvalidRequest(
            "A batch completion (several models in 'model') cannot be streamed: send "
            "'stream': false, or one request per model.",
            param="stream",
            code="invalid_value",
        )
    return names


async def _one(parent: Call, index: int, model: str) -> bytes:
    request = parent.request
    assert request is not None
    body = dict(request.body)
    body["model"] = model
    call = Call(
        request_id=f"{parent.request_id}-{index}",
        call_type=parent.call_type,
        dialect=parent.dialect,
    )
    call.principal = parent.principal
    call.tags = parent.tags
    call.client_credentials = parent.client_credentials
    call.request = dataclasses.replace(request, body=body)
    cost: Decimal | None = None
    try:
        await admission.admit(call)
        result = await pipeline.run(call)
        cost = pipeline.request_cost_of(call)
        return call.dialect.render(call.request, result)
    except GatewayError as err:
        call.failed(err)
        return call.dialect.error(err)[1]
    except asyncio.CancelledError:
        call.client_closed()
        raise
    finally:
        admission.settle_soon(call, call.finish(cost))


async def serve(parent: Call, models: list[str], send: Send) -> None:
    """Answer a batch: every model called concurrently, the answers in the order asked.

    A model that is not served, or that the key may not use, fails the whole batch (one
    usage row, the client's mistake) before any call is made.
    """
    assert parent.principal is not None
    table = await routing_table()
    for model in models:
        resolve_group(table, parent.principal, model)
    parent.record = False
    parts = await asyncio.gather(*(_one(parent, n, m) for n, m in enumerate(models)))
    payload = b"[" + b",".join(parts) + b"]"
    await send_response(send, 200, payload, parent.response_headers())
