"""Read-only endpoints: model lists, model info and health. Credentials are never included."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from django.db import connection

from apps.core.db import db_task
from apps.core.errors import GatewayError, PermissionDenied, UpstreamTimeout
from apps.gateway import pipeline
from apps.gateway.call import Call
from apps.gateway.dialects.openai.dialect import OPENAI
from apps.gateway.endpoints import authenticated, new_request_id
from apps.gateway.http import Request, send_response
from apps.keys.auth import Principal
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, Op
from apps.routing import state
from apps.routing.selectors import Candidate, Group, routing_table, visible_groups

_CREATED = int(time.time())


async def list_models(req: Request) -> None:
    principal = await authenticated(req)
    if principal is None:
        return
    groups = await visible_groups(principal)
    data = [
        {
            "id": group.name,
            "object": "model",
            "created": _CREATED,
            "owned_by": group.candidates[0].target.provider if group.candidates else "gateway",
        }
        for group in groups
    ]
    await send_response(req.send, 200, orjson.dumps({"object": "list", "data": data}))


def _deployment_info(group: Group, candidate: Candidate) -> dict[str, Any]:
    target = candidate.target
    params: dict[str, Any] = {"model": f"{target.provider}/{target.model}"}
    if target.api_base:
        params["api_base"] = target.api_base
    if target.api_version:
        params["api_version"] = target.api_version
    if candidate.rpm is not None:
        params["rpm"] = candidate.rpm
    if candidate.tpm is not None:
        params["tpm"] = candidate.tpm
    params["timeout"] = target.timeout_s
    if target.stream_timeout_s:
        params["stream_timeout"] = target.stream_timeout_s
    params["weight"] = candidate.weight
    if candidate.order:
        params["order"] = candidate.order
    params["drop_params"] = target.drop_params
    # Only non-secret provider settings: anything credential-like stays out.
    for name, value in target.params.items():
        if not _secret_name(name):
            params[name] = value
    prices = candidate.prices
    info: dict[str, Any] = {"id": target.deployment_id, **group.model_info}
    if prices.input is not None:
        info["input_cost_per_token"] = float(prices.input)
    if prices.output is not None:
        info["output_cost_per_token"] = float(prices.output)
    remaining = state.cooldown_remaining(target.deployment_id)
    info["in_cooldown"] = remaining > 0
    info["cooldown_remaining_s"] = round(remaining, 3)
    return {"model_name": group.name, "litellm_params": params, "model_info": info}


_SECRET_WORDS = ("key", "secret", "token", "credential", "password")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


async def model_info(req: Request) -> None:
    principal = await authenticated(req)
    if principal is None:
        return
    groups = await visible_groups(principal)
    wanted = req.query.get("litellm_model_id") or None
    data = [
        _deployment_info(group, candidate)
        for group in groups
        for candidate in group.candidates
        if wanted is None or candidate.target.deployment_id == wanted
    ]
    await send_response(req.send, 200, orjson.dumps({"data": data}))


async def liveliness(req: Request) -> None:
    await send_response(req.send, 200, orjson.dumps("I'm alive!"))


def _db_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() is not None


async def readiness(req: Request) -> None:
    try:
        ok = await db_task(_db_ok)()
    except Exception:
        ok = False
    status = 200 if ok else 503
    payload = {"status": "healthy" if ok else "unhealthy", "db": "connected" if ok else "error"}
    await send_response(req.send, status, orjson.dumps(payload))


async def _probe(principal: Principal, group: Group, candidate: Candidate) -> dict[str, Any]:
    """Send a one-token request to one deployment. Like every upstream call it leaves a usage
    row (call type ``health_check``, on the caller's key), with the probe's real cost."""
    body: dict[str, Any] = {
        "model": group.name,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    }
    op = Op.CHAT
    provider_ops: frozenset[Op] = get_provider(candidate.target.provider).ops
    if Op.CHAT not in provider_ops and Op.EMBEDDINGS in provider_ops:
        body = {"model": group.name, "input": "ping"}
        op = Op.EMBEDDINGS
    call = Call(request_id=new_request_id(), call_type="health_check", dialect=OPENAI)
    call.principal = principal
    call.request = CanonicalRequest(op=op, body=body)
    call.group_name = group.name
    call.candidate = candidate
    info: dict[str, Any] = {
        "model": group.name,
        "model_id": candidate.target.deployment_id,
        "provider": candidate.target.provider,
    }
    cooling = state.cooldown_remaining(candidate.target.deployment_id)
    if cooling:
        # Not probed: the router leaves it out until the cooldown ends.
        return {**info, "error": "cooling down after failures", "cooldown_remaining_s": cooling}
    try:
        try:
            result = await asyncio.wait_for(pipeline.attempt_one(call, candidate), timeout=30)
        except TimeoutError:
            raise UpstreamTimeout("the health check timed out after 30 s.") from None
        call.usage = result.usage
    except GatewayError as err:
        call.failed(err)  # scrubs the deployment's credentials from the message
        return {**info, "error": err.message}
    finally:
        call.finish()
    return info


async def health(req: Request) -> None:
    """Per-deployment health: each deployment answers a one-token request (master key only)."""
    principal = await authenticated(req)
    if principal is None:
        return
    if not principal.is_master:
        err = PermissionDenied("Only the master key may run health checks.", code="forbidden")
        status, payload = OPENAI.error(err)
        await send_response(req.send, status, payload)
        return
    table = await routing_table()
    groups = list(table.groups.values())
    results = await asyncio.gather(*(_probe(principal, g, c) for g in groups for c in g.candidates))
    healthy = [r for r in results if "error" not in r]
    unhealthy = [r for r in results if "error" in r]
    report = {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
    }
    await send_response(req.send, 200, orjson.dumps(report))
