"""The router's decisions for one request: which deployment next, whether and when to retry,
which fallback groups to try. The gateway's attempt loop (``apps.gateway.attempts``) performs
the calls; everything decided here reads memory (``state``) except the rpm/tpm check-and-take
of a deployment with a limit when Redis is configured (one round trip).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from apps.core.conf import conf
from apps.core.errors import GatewayError, RateLimited
from apps.routing import shared, state, strategies
from apps.routing.policy import (
    BAD_REQUEST,
    CONTENT_POLICY,
    CONTEXT_WINDOW,
    RequestOptions,
    RouterSettings,
    counts_against_deployment,
)
from apps.routing.selectors import Candidate, Group

_MAX_DELAY_S = 8.0


class NoDeploymentAvailable(RateLimited):
    """Every deployment of the group is cooling down or at its rpm/tpm limit."""

    code = "no_deployment_available"


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A rough prompt size (about four characters a token, plus a few per message), for the
    tpm check and the context-window pre-check; never sent anywhere."""
    chars = 0
    count = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            count += 1
            if isinstance(message, dict):
                content = message.get("content")
                if isinstance(content, str):
                    chars += len(content)
                elif isinstance(content, list):
                    for part in content:
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                            chars += len(part["text"])
    for name in ("prompt", "input"):
        value = body.get(name)
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            chars += sum(len(v) for v in value if isinstance(v, str))
    return chars // 4 + 4 * count


class Plan:
    """The attempts on one model group."""

    __slots__ = ("group", "ordered", "settings", "tokens", "tried")

    def __init__(
        self,
        group: Group,
        candidates: Sequence[Candidate],
        settings: RouterSettings,
        *,
        stream: bool,
        tokens: int,
        price_of: strategies.PriceOf | None = None,
    ) -> None:
        self.group = group
        self.settings = settings
        self.tokens = tokens
        self.tried: set[str] = set()
        self.ordered = strategies.order(
            candidates,
            settings.routing_strategy,
            stream=stream,
            price_of=price_of,
            latency_buffer=settings.lowest_latency_buffer,
        )

    def _available(self, now: float, first_only: bool = False) -> list[Candidate]:
        tried = self.tried
        cooling = state.any_cooling()
        out = []
        for c in self.ordered:
            dep = c.target.deployment_id
            if (tried and dep in tried) or (cooling and state.cooled_down(dep, now)):
                continue
            out.append(c)
            if first_only:
                break
        return out

    def has_untried(self) -> bool:
        return bool(self._available(time.time(), first_only=True))

    async def next(self) -> Candidate:
        """The deployment for the next attempt (its rpm taken). Raises NoDeploymentAvailable."""
        now = time.time()
        pool = self._available(now, first_only=True)
        if not pool and self.tried:
            self.tried.clear()  # every deployment had its turn: start over
            pool = self._available(now, first_only=True)
        if not pool:
            wait = min(state.cooldown_remaining(c.target.deployment_id, now) for c in self.ordered)
            raise self._unavailable("are cooling down after failures", wait)
        first = pool[0]
        if first.rpm is None and first.tpm is None:
            return self._took(first)
        pool = self._available(now)
        minute = state.current_minute(now)
        link = shared.link()
        if link is not None:
            prefix: list[Candidate] = []
            for c in pool:
                prefix.append(c)
                if c.rpm is None and c.tpm is None:
                    break
            index = await link.take(prefix, self.tokens, minute)
            if index is not None:
                if index < 0:
                    raise self._unavailable("are at their rpm/tpm limit", 0.0, now)
                state.take(prefix[index].target.deployment_id, minute)
                return self._took(prefix[index])
        for c in pool:
            dep = c.target.deployment_id
            if state.has_room(dep, c.rpm, c.tpm, self.tokens, minute):
                state.take(dep, minute)
                return self._took(c)
        raise self._unavailable("are at their rpm/tpm limit", 0.0, now)

    def _took(self, candidate: Candidate) -> Candidate:
        self.tried.add(candidate.target.deployment_id)
        return candidate

    def _unavailable(self, why: str, wait: float, now: float | None = None) -> GatewayError:
        if now is not None:
            wait = state.seconds_to_next_minute(now)
        seconds = max(1, math.ceil(wait))
        return NoDeploymentAvailable(
            f"No deployment available for model '{self.group.name}': all of them {why}. "
            f"Try again in {seconds} seconds.",
            headers={"retry-after": str(seconds)},
        )

    def failed(self, candidate: Candidate, err: GatewayError) -> None:
        """Count a failure of the deployment; cool it down after more than ``allowed_fails``
        failures this minute (never the group's last healthy one unless configured)."""
        settings = self.settings
        if settings.disable_cooldowns or not counts_against_deployment(err):
            return
        dep = candidate.target.deployment_id
        now = time.time()
        may_cool = settings.cooldown_last_deployment or any(
            not state.cooled_down(c.target.deployment_id, now)
            for c in self.group.candidates
            if c.target.deployment_id != dep
        )
        until = now + settings.cooldown_time
        fails = state.count_failure(dep, now)
        if may_cool and fails > settings.allowed_fails and settings.cooldown_time > 0:
            state.cool_down(dep, until)
        link = shared.link()
        if link is not None:
            link.note_failure(dep, settings.allowed_fails, until, may_cool)

    def retry_delay(self, err: GatewayError, retry: int) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based), None when the upstream asks
        for a longer wait than is worth holding the request for."""
        floor = self.settings.retry_after
        if self.has_untried():
            return floor  # another deployment: at once
        asked = retry_after_s(err.headers)
        if asked is not None:
            if asked > float(conf.GATEWAY_RETRY_MAX_WAIT_S):
                return None  # the client gets the error and the retry-after at once
            return max(asked, floor)
        backoff = min(_MAX_DELAY_S, float(conf.GATEWAY_RETRY_BACKOFF_S) * 2.0**retry)
        return max(backoff * (1 - 0.25 * random.random()), floor)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """An upstream's ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def fallback_groups(
    settings: RouterSettings, group: str, options: RequestOptions, error: str
) -> tuple[str, ...]:
    """The model groups to try after ``group`` failed with an error of class ``error``."""
    if error == CONTEXT_WINDOW:
        if options.context_window_fallbacks is not None:
            return options.context_window_fallbacks
        return _lookup(settings.context_window_fallbacks, group)
    if error == CONTENT_POLICY:
        return _lookup(settings.content_policy_fallbacks, group)
    if error == BAD_REQUEST:
        return ()
    if options.fallbacks is not None:
        return options.fallbacks
    return _lookup(settings.fallbacks, group) or settings.default_fallbacks


def _lookup(table: Mapping[str, tuple[str, ...]], group: str) -> tuple[str, ...]:
    return table.get(group) or table.get("*") or ()
