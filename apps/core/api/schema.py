"""OpenAPI documentation helpers (drf-spectacular)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema

F = TypeVar("F", bound=Callable[..., Any])


def doc(**kwargs: Any) -> Callable[[F], F]:
    """``extend_schema`` with a JSON object response unless one is given."""
    kwargs.setdefault("responses", {200: OpenApiTypes.OBJECT})
    decorator: Callable[[F], F] = extend_schema(**kwargs)
    return decorator
