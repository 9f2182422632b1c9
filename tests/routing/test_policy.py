"""Router settings as read from a config, a group and a request; error classes."""

from __future__ import annotations

import pytest

from apps.core.errors import InvalidRequest, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from apps.routing import policy
from apps.routing.policy import (
    RequestOptions,
    RouterSettings,
    SettingsError,
    error_class,
    request_options,
    router_settings,
)


def test_defaults_are_litellms() -> None:
    settings = router_settings({}, {})
    assert (settings.num_retries, settings.allowed_fails, settings.cooldown_time) == (2, 3, 5.0)
    assert settings.routing_strategy == "simple-shuffle"


def test_router_settings_win_over_litellm_settings() -> None:
    settings = router_settings(
        {"num_retries": 1, "request_timeout": 30, "fallbacks": [{"a": ["b"]}]},
        {"num_retries": 4, "routing_strategy": "least-busy"},
    )
    assert settings.num_retries == 4
    assert settings.timeout == 30
    assert settings.fallbacks == {"a": ("b",)}
    assert settings.routing_strategy == "least-busy"


def test_retry_policy_overrides_num_retries_per_class() -> None:
    settings = router_settings({}, {"num_retries": 3, "retry_policy": {"RateLimitErrorRetries": 5}})
    assert settings.retries_for(policy.RATE_LIMIT) == 5
    assert settings.retries_for(policy.INTERNAL) == 3
    assert settings.retries_for(policy.INTERNAL, requested=1) == 1
    assert settings.retries_for(policy.BAD_REQUEST) == 0
    assert settings.retries_for(policy.AUTHENTICATION) == 0


def test_model_group_retry_policy_applies_to_its_group() -> None:
    settings = router_settings(
        {}, {"model_group_retry_policy": {"gpt": {"TimeoutErrorRetries": 0}}}
    )
    assert settings.for_group("gpt", {}).retries_for(policy.TIMEOUT) == 0
    assert settings.for_group("other", {}).retries_for(policy.TIMEOUT) == 2


def test_group_settings_on_top() -> None:
    group = RouterSettings().for_group(
        "gpt", {"num_retries": 0, "fallbacks": ["b"], "routing_strategy": "cost-based-routing"}
    )
    assert group.num_retries == 0
    assert group.fallbacks == {"gpt": ("b",)}
    assert group.routing_strategy == "cost-based-routing"


@pytest.mark.parametrize(
    "router",
    [
        {"routing_strategy": "fastest-please"},
        {"num_retries": -1},
        {"num_retries": 1.5},
        {"allowed_fails": "many"},
        {"retry_policy": {"NopeErrorRetries": 1}},
        {"fallbacks": "gpt"},
        {"fallbacks": [{"gpt": [3]}]},
    ],
)
def test_values_the_router_cannot_act_on_are_refused(router: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        router_settings({}, router)


def test_request_options() -> None:
    assert request_options({"model": "x"}) == RequestOptions()
    options = request_options(
        {
            "num_retries": 1,
            "fallbacks": ["a", {"model": "b", "temperature": 0}],
            "mock_testing_fallbacks": True,
            "timeout": 3,
        }
    )
    assert options.num_retries == 1
    assert options.fallbacks == ("a", "b")
    assert options.mock_testing_fallbacks
    assert options.timeout == 3.0


@pytest.mark.parametrize(
    "body",
    [
        {"num_retries": True},
        {"num_retries": 11},
        {"fallbacks": "gpt"},
        {"fallbacks": [1]},
        {"timeout": 0},
        {"mock_testing_fallbacks": "yes"},
    ],
)
def test_bad_request_options(body: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        request_options(body)


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (UpstreamError("x", http_status=429, upstream_status=429), policy.RATE_LIMIT),
        (UpstreamError("x", http_status=502, upstream_status=500), policy.INTERNAL),
        (UpstreamUnavailable("cannot connect"), policy.INTERNAL),
        (UpstreamTimeout("timed out"), policy.TIMEOUT),
        (UpstreamError("x", http_status=401, upstream_status=401), policy.AUTHENTICATION),
        (UpstreamError("x", http_status=400, upstream_status=400), policy.BAD_REQUEST),
        (
            UpstreamError("x", http_status=400, code="context_length_exceeded"),
            policy.CONTEXT_WINDOW,
        ),
        (
            UpstreamError(
                "vllm error: This model's maximum context length is 4096 tokens",
                http_status=400,
                upstream_status=400,
            ),
            policy.CONTEXT_WINDOW,
        ),
        (
            UpstreamError("x", http_status=400, code="content_policy_violation"),
            policy.CONTENT_POLICY,
        ),
        (InvalidRequest("bad"), policy.BAD_REQUEST),
    ],
)
def test_error_classes(err: UpstreamError, expected: str) -> None:
    assert error_class(err) == expected


def test_what_counts_against_a_deployment() -> None:
    assert policy.counts_against_deployment(UpstreamError("x", http_status=503))
    assert policy.counts_against_deployment(UpstreamTimeout("t"))
    assert policy.counts_against_deployment(UpstreamError("x", http_status=401))
    assert not policy.counts_against_deployment(UpstreamError("x", http_status=400))
    assert not policy.counts_against_deployment(
        UpstreamError("x", http_status=400, code="context_length_exceeded")
    )
