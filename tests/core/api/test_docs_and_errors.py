"""The OpenAPI schema and docs page (local assets only), and the one error shape."""

from __future__ import annotations

import re

import pytest
from rest_framework import exceptions
from rest_framework.test import APIClient

from apps.core.api.errors import exception_handler

pytestmark = pytest.mark.django_db


def test_openapi_schema_lists_every_management_route() -> None:
    response = APIClient().get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = set(schema["paths"])
    for path in (
        "/key/generate",
        "/key/{key}/regenerate",
        "/team/member_add",
        "/organization/new",
        "/user/new",
        "/customer/new",
        "/end_user/new",
        "/budget/new",
        "/model/new",
    ):
        assert path in paths, path
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    generate = schema["paths"]["/key/generate"]["post"]["requestBody"]["content"]
    fields = schema["components"]["schemas"]
    ref = generate["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"max_budget", "models", "duration", "team_id"} <= set(fields[ref]["properties"])


def test_docs_page_uses_only_local_assets() -> None:
    response = APIClient().get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    assets = re.findall(r'src="(/static/[^"]+)"', html)
    assert assets
    for asset in assets:
        assert APIClient().get(asset).status_code == 200, asset


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (exceptions.ValidationError({"a": ["bad"], "b": {"c": ["worse"]}}), 400, "invalid_request"),
        (exceptions.NotAuthenticated(), 401, "missing_api_key"),
        (exceptions.AuthenticationFailed("no"), 401, "invalid_api_key"),
        (exceptions.PermissionDenied(), 403, "forbidden"),
        (exceptions.NotFound(), 404, "not_found"),
        (exceptions.ParseError(), 400, "parse_error"),
        (exceptions.UnsupportedMediaType("text/plain"), 415, "unsupported_media_type"),
        (RuntimeError("boom"), 500, "internal_error"),
    ],
)
def test_every_error_has_the_api_shape(exc: Exception, status: int, code: str) -> None:
    response = exception_handler(exc, {})
    assert response.status_code == status
    error = response.data["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert "boom" not in str(error)


def test_field_errors_name_the_field_and_all_messages() -> None:
    response = exception_handler(
        exceptions.ValidationError({"a": ["bad"], "b": {"c": ["worse"]}}), {}
    )
    error = response.data["error"]
    assert error["param"] == "a"
    assert error["message"] == "a: bad; b.c: worse"
