"""Short-lived upstream access tokens (Vertex AI service accounts, Entra ID), fetched by the
gateway for providers implementing ``SupportsTokenAuth`` and cached until shortly before they
expire. Concurrent requests for the same credentials share one fetch."""

from __future__ import annotations

import asyncio
import dataclasses

from apps.core import clock
from apps.core.errors import UpstreamError
from apps.gateway import upstream
from apps.providers.base import Provider, SupportsTokenAuth
from apps.providers.schemas import Target

_REFRESH_MARGIN_S = 60.0
_tokens: dict[str, tuple[str, float]] = {}
_inflight: dict[str, asyncio.Future[tuple[str, float]]] = {}


async def _fetch(provider: SupportsTokenAuth, target: Target) -> tuple[str, float]:
    req = provider.build_token_request(target, clock.time())
    resp = await upstream.send(req, target=target, timeout_s=30.0)
    if resp.status >= 400:
        raise UpstreamError(
            f"{target.provider} error: the credentials were refused by the token endpoint "
            f"(HTTP {resp.status}).",
            upstream_status=resp.status,
            http_status=401 if resp.status in (400, 401, 403) else 502,
            type="authentication_error",
            code="upstream_auth_failed",
            retryable=resp.status >= 500,
        )
    return provider.parse_token_response(resp.body, clock.time())


async def with_token(provider: Provider, target: Target) -> Target:
    """``target`` with ``access_token`` set when its provider needs one."""
    token_auth = provider.token_auth
    if token_auth is None:
        return target
    key = token_auth.token_cache_key(target)
    if key is None:
        return target
    cached = _tokens.get(key)
    if cached is None or cached[1] - _REFRESH_MARGIN_S < clock.time():
        future = _inflight.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            _inflight[key] = future
            try:
                cached = await _fetch(token_auth, target)
                _tokens[key] = cached
                future.set_result(cached)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # mark retrieved when nobody else waits
                raise
            finally:
                _inflight.pop(key, None)
        else:
            cached = await asyncio.shield(future)
    return dataclasses.replace(target, access_token=cached[0])


def clear() -> None:
    _tokens.clear()
