"""A key's limits hold on the native routes too, refused in each SDK's own error shape before
any upstream call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from google import genai
from google.genai import errors, types

from apps.core import ratelimit
from tests.fakes import bedrock as fake
from tests.gateway.helpers import E2E, usage_rows

pytestmark = E2E


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    ratelimit.reset()
    yield
    ratelimit.reset()


def test_rpm_limit_on_gemini(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    gemini_group()
    client = genai.Client(
        api_key=make_key(rpm_limit=1),
        http_options=types.HttpOptions(base_url=gateway_server.url + "/gemini"),
    )
    client.models.generate_content(model="gem", contents="one")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gem", contents="two")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert len(google.requests) == 1
    rows = usage_rows(gateway_server, 2)
    assert sorted(r.status_code for r in rows) == [200, 429]


def test_rpm_limit_on_bedrock(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    key = make_key(rpm_limit=1)
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gateway_server.url + "/bedrock",
        aws_access_key_id=key,
        aws_secret_access_key=key,
        config=Config(retries={"max_attempts": 1}),
    )
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    client.converse(modelId="claude", messages=messages)
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId="claude", messages=messages)
    assert len(bedrock_fake.app[fake.REQUESTS]) == 1
