"""Handlers of the OpenAI-format endpoints: parse -> pipeline -> render, nothing more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from apps.gateway.call import Call
from apps.gateway.dialects.base import parse_json
from apps.gateway.dialects.openai.dialect import OPENAI
from apps.gateway.dialects.openai.request import PARSERS, VALIDATORS
from apps.gateway.endpoints import new_request_id, serve_call
from apps.gateway.http import Request
from apps.providers.schemas import CanonicalRequest, Op


def model_in_path_handler(op: Op, param: str) -> Callable[[Request], Awaitable[None]]:
    """A handler for paths that name the model group (``/openai/deployments/{group}/...``,
    ``/engines/{group}/...``): the path wins over the body's ``model``."""
    validate = VALIDATORS[op]

    async def handler(req: Request) -> None:
        model = str(req.scope.get("path_params", {}).get(param, ""))

        def parse(raw: bytes) -> CanonicalRequest:
            body = parse_json(raw)
            body["model"] = model
            return validate(body)

        call = Call(request_id=new_request_id(), call_type=op.value, dialect=OPENAI)
        await serve_call(call, req, parse)

    handler.__name__ = f"{op.value}_path_model_handler"
    return handler


def openai_handler(op: Op) -> Callable[[Request], Awaitable[None]]:
    parser = PARSERS[op]

    async def handler(req: Request) -> None:
        call = Call(request_id=new_request_id(), call_type=op.value, dialect=OPENAI)
        await serve_call(call, req, parser)

    handler.__name__ = f"{op.value}_handler"
    return handler
