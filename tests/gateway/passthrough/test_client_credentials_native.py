"""A client's own provider key on a native route (``x-provider-api-key``)."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from apps.routing.models import ModelGroup
from tests.conftest import reset_gateway_caches
from tests.gateway.helpers import E2E
from tests.leaks import secret

pytestmark = E2E
CLIENT_GEMINI_KEY = secret("client-gemini-key")


def test_client_key_on_a_native_route(
    gateway_server: Any, gemini_group: Any, google: Any, make_key: Any
) -> None:
    """The Gen AI SDK sends its own provider key in a header on /gemini."""
    gemini_group()
    options = types.HttpOptions(
        base_url=gateway_server.url + "/gemini", headers={"x-provider-api-key": CLIENT_GEMINI_KEY}
    )
    client = genai.Client(api_key=make_key(), http_options=options)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gem", contents="hello")
    assert caught.value.code == 403 and google.requests == []
    ModelGroup.objects.filter(name="gem").update(allow_client_api_key=True)
    reset_gateway_caches()
    with pytest.raises(errors.ClientError) as caught:  # the fake knows only its own key
        client.models.generate_content(model="gem", contents="hello")
    assert google.requests[-1].headers["x-goog-api-key"] == CLIENT_GEMINI_KEY
    assert CLIENT_GEMINI_KEY not in str(caught.value)
