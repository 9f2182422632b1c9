"""A call's outcome has one owner: status and error change only through ``failed`` and
``client_closed``, and a failure never keeps the deployment's credential in its message."""

from __future__ import annotations

import pytest

from apps.core.errors import InvalidRequest, UpstreamError
from apps.gateway.call import STATUS_CLIENT_CLOSED, Call
from apps.gateway.dialects.openai.dialect import OPENAI
from apps.providers.schemas import Target
from apps.routing.selectors import Candidate

UPSTREAM_KEY = "upstream-secret-4f9a2c"


def _call() -> Call:
    return Call(request_id="req-1", call_type="chat_completions", dialect=OPENAI)


def test_a_new_call_has_succeeded_so_far():
    call = _call()
    assert (call.status, call.error) == (200, None)


def test_outcome_is_not_writable_from_outside():
    call = _call()
    with pytest.raises(AttributeError):
        call.status = 500  # type: ignore[misc]
    with pytest.raises(AttributeError):
        call.error = InvalidRequest("x")  # type: ignore[misc]


def test_failed_takes_the_errors_status():
    call = _call()
    err = InvalidRequest("bad")
    call.failed(err)
    assert (call.status, call.error) == (400, err)


def test_failed_scrubs_the_deployments_key_from_the_message():
    call = _call()
    target = Target(deployment_id="d", provider="openai", model="m", api_key=UPSTREAM_KEY)
    call.candidate = Candidate(target=target)
    call.failed(UpstreamError(f"refused key {UPSTREAM_KEY} and sk-abcdefghijkl"))
    assert call.error is not None
    assert UPSTREAM_KEY not in call.error.message
    assert "sk-abcdefghijkl" not in call.error.message


def test_client_closed_keeps_the_error_and_sets_499():
    call = _call()
    call.client_closed()
    assert (call.status, call.error) == (STATUS_CLIENT_CLOSED, None)
