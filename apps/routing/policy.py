"""Router settings: retries, cooldowns, strategies and fallbacks, as the gateway acts on them.

Read from the imported config (``router_settings``, then ``litellm_settings`` for the keys
LiteLLM accepts in both), overridden per model group (``ModelGroup.settings``) and, for the
few fields a client may set, per request. Names and defaults are LiteLLM's
(``litellm/router.py``): ``num_retries`` 2, ``allowed_fails`` 3, ``cooldown_time`` 5 s.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.core.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable

STRATEGIES = frozenset(
    {
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "usage-based-routing",
        "usage-based-routing-v2",
        "cost-based-routing",
    }
)

# LiteLLM's RetryPolicy fields (litellm/types/router.py), by the error class each one covers.
BAD_REQUEST = "BadRequestError"
AUTHENTICATION = "AuthenticationError"
TIMEOUT = "TimeoutError"
RATE_LIMIT = "RateLimitError"
CONTENT_POLICY = "ContentPolicyViolationError"
INTERNAL = "InternalServerError"
CONTEXT_WINDOW = "ContextWindowExceededError"
RETRY_POLICY_FIELDS = frozenset(
    f"{name}Retries"
    for name in (BAD_REQUEST, AUTHENTICATION, TIMEOUT, RATE_LIMIT, CONTENT_POLICY, INTERNAL)
)
# Error classes retried by default (``num_retries`` times): another attempt may succeed.
TRANSIENT = frozenset({TIMEOUT, RATE_LIMIT, INTERNAL})

# Keys of a group's ``settings`` (and of router_settings) that the router reads.
GROUP_KEYS = frozenset(
    {
        "routing_strategy",
        "num_retries",
        "retry_policy",
        "retry_after",
        "allowed_fails",
        "cooldown_time",
        "disable_cooldowns",
        "cooldown_last_deployment",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "timeout",
        "stream_timeout",
        "lowest_latency_buffer",
    }
)

_CONTEXT_WORDS = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|prompt is too long"
    r"|too many tokens|input is too long|exceeds the maximum number of tokens",
    re.IGNORECASE,
)
_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})


class SettingsError(ValueError):
    """A router setting has a value the gateway cannot act on."""


def _status(err: GatewayError) -> int:
    upstream: int | None = getattr(err, "upstream_status", None)
    return upstream or err.http_status


def error_class(err: GatewayError) -> str:
    """The LiteLLM exception class a failure corresponds to."""
    code = err.code or ""
    status = _status(err)
    if code == "context_length_exceeded" or (
        status in (400, 413, 422) and _CONTEXT_WORDS.search(err.message)
    ):
        return CONTEXT_WINDOW
    if code in _CONTENT_POLICY_CODES:
        return CONTENT_POLICY
    if isinstance(err, UpstreamTimeout) or status in (408, 504):
        return TIMEOUT
    if status == 429:
        return RATE_LIMIT
    if status in (401, 403):
        return AUTHENTICATION
    if isinstance(err, UpstreamUnavailable) or status >= 500:
        return INTERNAL
    return BAD_REQUEST


def counts_against_deployment(err: GatewayError) -> bool:
    """Whether a failure is the deployment's (429, 5xx, timeouts, connection errors, and its
    own credentials or model being refused: 401, 403, 404), not the client's request."""
    if err.code == "context_length_exceeded" or err.code in _CONTENT_POLICY_CODES:
        return False
    if isinstance(err, UpstreamTimeout | UpstreamUnavailable):
        return True
    status = _status(err)
    return status in (401, 403, 404, 408, 429) or status >= 500


def _number(name: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SettingsError(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {value!r}") from None
    if number < 0 or number != number:
        raise SettingsError(f"{name}: expected a number >= 0, got {value!r}")
    if integer and not number.is_integer():
        raise SettingsError(f"{name}: expected a whole number, got {value!r}")
    return number


def _fallback_map(name: str, value: Any) -> dict[str, tuple[str, ...]]:
    """LiteLLM's ``[{"group": ["fallback", ...]}, ...]`` (a plain mapping is taken too)."""
    if value is None:
        return {}
    items: list[Any] = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise SettingsError(f"{name}: expected a list of {{model: [fallbacks]}} mappings")
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise SettingsError(f"{name}: expected {{model: [fallbacks]}}, got {item!r}")
        for group, targets in item.items():
            out[str(group)] = _model_list(f"{name}.{group}", targets)
    return out


def _model_list(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{name}: expected a list of model names")
    return tuple(value)


def _retry_policy(name: str, value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SettingsError(f"{name}: expected a mapping of <Error>Retries to counts")
    out = {}
    for key, count in value.items():
        if key not in RETRY_POLICY_FIELDS:
            raise SettingsError(f"{name}: unknown field {key!r}")
        out[key[: -len("Retries")]] = int(_number(f"{name}.{key}", count, integer=True))
    return out


@dataclass(frozen=True, slots=True)
class RouterSettings:
    routing_strategy: str = "simple-shuffle"
    num_retries: int = 2
    # Per error class (without the ``Retries`` suffix): overrides num_retries for that class.
    retry_policy: Mapping[str, int] = field(default_factory=dict)
    # Seconds to wait at least before a retry (LiteLLM's ``retry_after``).
    retry_after: float = 0.0
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    disable_cooldowns: bool = False
    # Cool down a group's last healthy deployment too (by default it stays in).
    cooldown_last_deployment: bool = False
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_fallbacks: tuple[str, ...] = ()
    max_fallbacks: int = 5
    timeout: float | None = None
    stream_timeout: float | None = None
    lowest_latency_buffer: float = 0.0
    # Per group: LiteLLM's model_group_retry_policy.
    group_retry_policy: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def retries_for(self, error: str, requested: int | None = None) -> int:
        """How many retries an error of class ``error`` gets."""
        if error in self.retry_policy:
            return self.retry_policy[error]
        if error not in TRANSIENT:
            return 0
        return self.num_retries if requested is None else requested

    def for_group(self, name: str, group_settings: Mapping[str, Any]) -> RouterSettings:
        """These settings with a group's own on top (``ModelGroup.settings``)."""
        policy = self.group_retry_policy.get(name)
        if not group_settings and policy is None:
            return self
        changes = _parse(group_settings, "group settings", group=name)
        if policy is not None and "retry_policy" not in changes:
            changes["retry_policy"] = policy
        return dataclasses.replace(self, **changes)


def _parse(raw: Mapping[str, Any], where: str, group: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{where}.{key}"
        if value is None:
            continue
        if key == "routing_strategy":
            if value not in STRATEGIES:
                raise SettingsError(f"{name}: unknown strategy {value!r}")
            out[key] = value
        elif key in ("num_retries", "allowed_fails", "max_fallbacks"):
            out[key] = int(_number(name, value, integer=True))
        elif key in ("retry_after", "cooldown_time", "lowest_latency_buffer"):
            out[key] = _number(name, value)
        elif key in ("timeout", "stream_timeout", "request_timeout"):
            out["timeout" if key == "request_timeout" else key] = _number(name, value) or None
        elif key in ("disable_cooldowns", "cooldown_last_deployment"):
            out[key] = bool(value)
        elif key == "retry_policy":
            out[key] = _retry_policy(name, value)
        elif key == "model_group_retry_policy":
            if not isinstance(value, dict):
                raise SettingsError(f"{name}: expected a mapping of model group to retry_policy")
            out["group_retry_policy"] = {
                str(g): _retry_policy(f"{name}.{g}", p) for g, p in value.items()
            }
        elif key == "routing_strategy_args":
            if not isinstance(value, dict):
                raise SettingsError(f"{name}: expected a mapping")
            if "lowest_latency_buffer" in value:
                out["lowest_latency_buffer"] = _number(
                    f"{name}.lowest_latency_buffer", value["lowest_latency_buffer"]
                )
        elif key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            if group is not None and isinstance(value, list | str) and not _is_map_list(value):
                # A group's own list: fallbacks of this group.
                out[key] = {group: _model_list(name, value)}
            else:
                out[key] = _fallback_map(name, value)
        elif key == "default_fallbacks":
            out[key] = _model_list(name, value)
    return out


def _is_map_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


# Keys of litellm_settings that configure the router (LiteLLM passes them on to it).
LITELLM_ROUTER_KEYS = frozenset(
    {
        "num_retries",
        "request_timeout",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "default_fallbacks",
        "allowed_fails",
        "cooldown_time",
        "retry_policy",
        "max_fallbacks",
    }
)
ROUTER_KEYS = GROUP_KEYS | {
    "default_fallbacks",
    "max_fallbacks",
    "model_group_retry_policy",
    "routing_strategy_args",
}


def router_settings(
    litellm_settings: Mapping[str, Any], router: Mapping[str, Any]
) -> RouterSettings:
    """The proxy-wide settings: litellm_settings' router keys, then router_settings' on top.

    Raises SettingsError for a value the gateway cannot act on.
    """
    merged = _parse(
        {k: v for k, v in litellm_settings.items() if k in LITELLM_ROUTER_KEYS},
        "litellm_settings",
    )
    merged.update(_parse({k: v for k, v in router.items() if k in ROUTER_KEYS}, "router_settings"))
    return RouterSettings(**merged)


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What a client may set per request (gateway-only fields, never forwarded upstream)."""

    num_retries: int | None = None
    fallbacks: tuple[str, ...] | None = None
    context_window_fallbacks: tuple[str, ...] | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    mock_testing_fallbacks: bool = False
    mock_testing_rate_limit_error: bool = False
    mock_testing_context_fallbacks: bool = False
    mock_testing_content_policy_fallbacks: bool = False

    @property
    def any(self) -> bool:
        return self != _NO_OPTIONS


_NO_OPTIONS = RequestOptions()
REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(RequestOptions))
_MOCK_FIELDS = frozenset(n for n in REQUEST_FIELDS if n.startswith("mock_testing_"))


def _request_models(name: str, value: Any) -> tuple[str, ...]:
    """A request's fallbacks: model names, or LiteLLM's ``{"model": name, ...}`` objects."""
    if not isinstance(value, list):
        raise SettingsError(f"'{name}' must be an array of model names")
    out = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("model"), str):
            item = item["model"]
        if not isinstance(item, str) or not item:
            raise SettingsError(f"'{name}' must be an array of model names")
        out.append(item)
    return tuple(out)


def request_options(body: Mapping[str, Any]) -> RequestOptions:
    """The routing options of a request body. Raises SettingsError naming the bad field."""
    found: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if name in _MOCK_FIELDS:
            if not isinstance(value, bool):
                raise SettingsError(f"'{name}' must be a boolean")
            found[name] = value
        elif name == "num_retries":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
                raise SettingsError("'num_retries' must be an integer from 0 to 10")
            found[name] = value
        elif name in ("timeout", "stream_timeout"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise SettingsError(f"'{name}' must be a number of seconds above 0")
            found[name] = float(value)
        else:
            found[name] = _request_models(name, value)
    return RequestOptions(**found) if found else _NO_OPTIONS
