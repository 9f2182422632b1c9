"""What every gateway endpoint shares: request ids, the caller's key, and ``serve_call``, which
takes one call from its body to its answer (parse -> pipeline -> render) and its usage row."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal

from apps.core.errors import GatewayError
from apps.core.logs import REQUEST_ID
from apps.gateway import admission, batch, client_credentials, pipeline, streaming
from apps.gateway.call import Call
from apps.gateway.dialects.base import Dialect
from apps.gateway.dialects.openai.dialect import OPENAI
from apps.gateway.http import (
    ClientDisconnected,
    Receive,
    Request,
    Send,
    encode_headers,
    send_response,
)
from apps.keys.auth import Principal, authenticate, bearer_token
from apps.providers.schemas import CanonicalRequest
from apps.usage.metrics import InFlight
from apps.usage.services import stores_bodies

logger = logging.getLogger(__name__)
# What a refused or failed call costs the caller (``x-litellm-response-cost`` on every answer).
ZERO = Decimal(0)


_ids = itertools.count()
_id_prefix = secrets.token_hex(8)


def _reset_ids() -> None:
    global _ids, _id_prefix
    _ids = itertools.count()
    _id_prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_reset_ids)


def new_request_id() -> str:
    """A unique id: a random per-process prefix and a counter (uuid4 reads the OS random
    source on every call, a cost the profile showed)."""
    return f"req-{_id_prefix}{next(_ids):016x}"


def tags_of(value: bytes) -> list[str]:
    """``x-litellm-tags: a, b`` -> ["a", "b"] (at most 32 tags of 128 characters)."""
    text = value.decode("latin-1")
    return [tag.strip()[:128] for tag in text.split(",") if tag.strip()][:32]


def token_of(req: Request) -> str | None:
    """The caller's key: ``Authorization: Bearer``, or the ``api-key`` (Azure) / ``x-api-key``
    (Anthropic) headers their SDKs send."""
    return (
        bearer_token(req.header(b"authorization"))
        or req.header(b"api-key")
        or req.header(b"x-api-key")
    )


async def _watch_disconnect(call: Call, receive: Receive, task: asyncio.Task[object]) -> None:
    """Cancel the request's task when the client goes away, so the upstream call stops too.

    The server also reports ``http.disconnect`` once the response is complete; by then the
    client has everything and what the call still does (reading the rest of an upstream body
    for connection reuse) must not be cut short.
    """
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not call.body_done:
                task.cancel()
            return


# Answers a call whose principal and request are set; returns the cost when it knows it.
Answer = Callable[[Call, Send], Awaitable[Decimal | None]]


async def answer_canonical(call: Call, send: Send) -> Decimal | None:
    """The answer of a call in a client format the gateway translates (OpenAI, Anthropic):
    streamed, or complete and rendered by the call's dialect."""
    assert call.request is not None
    if call.request.stream:
        await streaming.stream(call, send)
        return None
    result = await pipeline.run(call)
    cost = pipeline.request_cost_of(call)
    rendered = call.dialect.render(call.request, result)
    if stores_bodies(call.principal):
        call.response_body = rendered
    await send_response(send, 200, rendered, call.response_headers(cost))
    return cost


async def serve_call(
    call: Call,
    req: Request,
    parse: Callable[[bytes], CanonicalRequest],
    *,
    token: Callable[[Request], str | None] = token_of,
    answer: Answer = answer_canonical,
) -> None:
    """Run one gateway call end to end and always leave exactly one usage row.

    ``token`` finds the caller's key (the body is read by then); ``parse`` turns the body into
    a CanonicalRequest in the client's format, after auth; ``answer`` sends the answer.
    """
    send = req.send
    dialect: Dialect = call.dialect
    cost: Decimal | None = None
    watcher: asyncio.Task[None] | None = None
    InFlight.value += 1
    REQUEST_ID.set(call.request_id)
    try:
        try:
            body = await req.read_body()
            call.principal = await authenticate(token(req))
            tags = req.headers.get(b"x-litellm-tags")
            if tags:
                call.tags = tags_of(tags)
            call.request = parse(body)
            request = call.request
            call.client_credentials = client_credentials.from_request(
                req.headers, request.native if request.native is not None else request.body
            )
            # A batch's parts are admitted one by one, each as a call of its own.
            models = batch.models_of(request)
            if models is None:
                await admission.admit(call)
            task = asyncio.current_task()
            assert task is not None
            watcher = asyncio.get_running_loop().create_task(
                _watch_disconnect(call, req.receive, task)
            )
            if models is not None:
                await batch.serve(call, models, send)
            else:
                cost = await answer(call, send)
        except GatewayError as err:
            call.failed(err)
            if not call.headers_sent:
                status, payload = dialect.error(err)
                headers = call.response_headers(ZERO) + encode_headers(err.headers)
                await send_response(send, status, payload, headers)
        except ClientDisconnected:
            call.client_closed()
        except asyncio.CancelledError:
            call.client_closed()
            if watcher is None or not watcher.done() or watcher.cancelled():
                raise
            # The watcher cancelled us because the client left: the call is simply over, and
            # letting the cancellation out would make the server log it as a crash.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        except Exception:
            logger.exception("unhandled error in request %s", call.request_id)
            internal = GatewayError(
                "The gateway failed to handle this request.", code="internal_error"
            )
            call.failed(internal)
            if not call.headers_sent:
                status, payload = dialect.error(internal)
                await send_response(send, status, payload, call.response_headers(ZERO))
    finally:
        InFlight.value -= 1
        if watcher is not None:
            watcher.cancel()
        # Every call leaves one row, refused ones included (no key: key_id is empty).
        admission.settle_soon(call, call.finish(cost))


async def authenticated(req: Request, dialect: Dialect = OPENAI) -> Principal | None:
    """The caller, or None after answering 401 in ``dialect``'s format."""
    try:
        return await authenticate(token_of(req))
    except GatewayError as err:
        status, payload = dialect.error(err)
        await send_response(req.send, status, payload)
        return None
