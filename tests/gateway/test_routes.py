"""The route table: fixed paths with their /v1 aliases, a forgiven trailing slash, patterns
with parameters, and nothing registered by importing a module."""

from __future__ import annotations

from apps.gateway.http import Request
from apps.gateway.routes import RouteTable, gateway_routes


async def _one(req: Request) -> None:
    return None


async def _two(req: Request) -> None:
    return None


def test_fixed_path_answers_with_and_without_v1_and_with_a_trailing_slash():
    table = RouteTable()
    table.add("/things", "POST", _one)
    for path in ("/things", "/v1/things", "/v1/things/"):
        assert table.match({"path": path}) == {"POST": _one}


def test_path_without_alias_has_no_v1_form():
    table = RouteTable()
    table.add("/health", "GET", _one, v1_alias=False)
    assert table.match({"path": "/health"}) == {"GET": _one}
    assert table.match({"path": "/v1/health"}) is None


def test_pattern_parameters_land_in_the_scope():
    table = RouteTable()
    table.add_pattern(r"^/items/(?P<item>.+)/run$", "POST", _one)
    table.add_pattern(r"^/items/(?P<item>.+)/run$", "GET", _two)
    scope: dict[str, object] = {"path": "/items/a/b/run"}
    assert table.match(scope) == {"POST": _one, "GET": _two}
    assert scope["path_params"] == {"item": "a/b"}
    assert len(table.patterns) == 1


def test_unknown_path_matches_nothing():
    assert gateway_routes().match({"path": "/v1/nothing-here"}) is None


def test_every_client_format_is_in_the_table():
    table = gateway_routes()
    for path in (
        "/v1/chat/completions",
        "/v1/messages",
        "/messages/count_tokens",
        "/openai/v1/embeddings",
        "/health/readiness",
    ):
        assert table.match({"path": path}) is not None, path
    scope: dict[str, object] = {"path": "/openai/deployments/team/gpt-4o/chat/completions"}
    assert table.match(scope) is not None
    assert scope["path_params"] == {"deployment": "team/gpt-4o"}


def test_each_table_is_built_fresh():
    first, second = gateway_routes(), gateway_routes()
    first.add("/extra", "GET", _one)
    assert second.match({"path": "/extra"}) is None
