"""Client-supplied provider credentials: off by default, per model group, never stored,
logged or returned, and a client's base URL kept away from internal addresses."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from apps.core.errors import InvalidRequest, PermissionDenied
from apps.gateway.client_credentials import ClientCredentials, apply, check_api_base, from_request
from apps.providers.schemas import Target
from apps.routing.models import ModelGroup
from apps.routing.selectors import Candidate, ClientCredentialPolicy
from tests.gateway.helpers import usage_rows
from tests.leaks import secret

CLIENT_KEY = secret("sk-client-own-provider-key-0123456789")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- unit ---------------------------------------------------------------------------------


def test_from_request_reads_headers_then_body() -> None:
    assert from_request({}, {"model": "x"}) is None
    got = from_request({b"x-provider-api-key": b"k1"}, {"api_key": "k2", "api_base": "http://a"})
    assert got == ClientCredentials(api_key="k1", api_base="http://a")
    assert "k1" not in repr(got)
    with pytest.raises(InvalidRequest):
        from_request({}, {"api_key": 123})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://localhost/v1",
        "http://10.1.2.3/v1",
        "http://169.254.169.254/latest",
        "http://[::1]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://0.0.0.0/",
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest, match="internal address"):
        run(check_api_base(url, ClientCredentialPolicy(allow_api_base=True)))


def test_internal_address_allowed_when_listed_exactly() -> None:
    policy = ClientCredentialPolicy(allow_api_base=True, api_base_hosts=("127.0.0.1",))
    assert run(check_api_base("http://127.0.0.1:9/v1/", policy)) == "http://127.0.0.1:9/v1"
    wildcard = ClientCredentialPolicy(allow_api_base=True, api_base_hosts=("127.0.0.*",))
    with pytest.raises(InvalidRequest, match="internal address"):
        run(check_api_base("http://127.0.0.1:9/v1", wildcard))


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/", "http://user:pw@8.8.8.8/", "not a url", "http:///v1"]
)
def test_malformed_base_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        run(check_api_base(url, ClientCredentialPolicy(allow_api_base=True)))


def test_host_outside_the_allow_list_is_refused() -> None:
    policy = ClientCredentialPolicy(allow_api_base=True, api_base_hosts=("*.example.com",))
    with pytest.raises(InvalidRequest, match="not allowed"):
        run(check_api_base("https://8.8.8.8/v1", policy))


def _candidates() -> list[Candidate]:
    target = Target(
        deployment_id="d",
        provider="openai",
        model="m",
        api_base="https://up",
        api_key="sk-deployment",
        headers={"x-secret": "s"},
    )
    return [Candidate(target=target)]


def test_apply_refuses_what_the_group_does_not_allow() -> None:
    with pytest.raises(PermissionDenied):
        run(apply(ClientCredentials(api_key="k"), ClientCredentialPolicy(), "g", _candidates()))
    key_only = ClientCredentialPolicy(allow_api_key=True)
    with pytest.raises(PermissionDenied):
        run(
            apply(
                ClientCredentials(api_key="k", api_base="https://8.8.8.8"),
                key_only,
                "g",
                _candidates(),
            )
        )


def test_apply_never_sends_the_deployment_key_to_a_client_host() -> None:
    policy = ClientCredentialPolicy(allow_api_key=True, allow_api_base=True)
    with pytest.raises(InvalidRequest, match="api_key"):
        run(apply(ClientCredentials(api_base="https://8.8.8.8"), policy, "g", _candidates()))
    (replaced,) = run(
        apply(
            ClientCredentials(api_key="k", api_base="https://8.8.8.8/v1"),
            policy,
            "g",
            _candidates(),
        )
    )
    assert replaced.target.api_key == "k"
    assert replaced.target.api_base == "https://8.8.8.8/v1"
    assert replaced.target.headers == {}


# --- end to end ---------------------------------------------------------------------------


def _auth(recorded: Any) -> str:
    return {k.lower(): v for k, v in recorded.headers.items()}["authorization"]


def _allow(group: str, **fields: Any) -> None:
    ModelGroup.objects.filter(name=group).update(**fields)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("leak_guard")
def test_client_key_refused_by_default(
    gateway_server: Any, openai_upstream: Any, fake_openai: Any, make_key: Any
) -> None:
    openai_upstream()
    client = openai.OpenAI(base_url=gateway_server.url + "/v1", api_key=make_key(), max_retries=0)
    with pytest.raises(openai.PermissionDeniedError, match="client-supplied provider key"):
        client.chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"api_key": CLIENT_KEY},
        )
    assert fake_openai.requests == []
    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 403 and CLIENT_KEY not in row.error_message


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("leak_guard")
def test_client_key_used_when_allowed(
    gateway_server: Any, openai_upstream: Any, fake_openai: Any, make_key: Any
) -> None:
    openai_upstream()
    _allow("gpt", allow_client_api_key=True)
    key = make_key(models=["gpt"])
    client = openai.OpenAI(base_url=gateway_server.url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"api_key": CLIENT_KEY},
    )
    client.with_options(
        default_headers={"x-provider-api-key": CLIENT_KEY + "-h"}
    ).chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
    first, second = fake_openai.requests
    assert _auth(first) == f"Bearer {CLIENT_KEY}"
    assert "api_key" not in first.body
    assert _auth(second) == f"Bearer {CLIENT_KEY}-h"
    rows = usage_rows(gateway_server, 2)
    assert all(r.key_alias == rows[0].key_alias and r.key_id is not None for r in rows)
    assert all(CLIENT_KEY not in str(r.metadata) + r.error_message for r in rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("leak_guard")
def test_client_base_url_checked(
    gateway_server: Any, openai_upstream: Any, fake_openai: Any, make_key: Any
) -> None:
    openai_upstream(api_base="http://upstream.invalid/v1")
    _allow("gpt", allow_client_api_key=True, allow_client_api_base=True)
    client = openai.OpenAI(base_url=gateway_server.url + "/v1", api_key=make_key(), max_retries=0)
    body = {"api_key": CLIENT_KEY, "api_base": fake_openai.url + "/v1"}
    with pytest.raises(openai.BadRequestError, match="internal address"):
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}], extra_body=body
        )
    assert fake_openai.requests == []
    _allow("gpt", client_api_base_hosts=["127.0.0.1"])
    from tests.conftest import reset_gateway_caches

    reset_gateway_caches()
    reply = client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hi"}], extra_body=body
    )
    assert reply.choices[0].message.content
    assert _auth(fake_openai.requests[-1]) == f"Bearer {CLIENT_KEY}"
