"""Validation of OpenAI request bodies: every client mistake becomes a 400 naming the field.

Only fields the gateway understands are checked; unknown fields are forwarded untouched.
Error wording follows OpenAI's (https://platform.openai.com/docs/guides/error-codes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from apps.core.errors import InvalidRequest

MAX_INT = 2**53  # beyond this JSON numbers stop being exact in most clients and upstreams


# JSON type names as OpenAI's errors give them (bool before int: a bool is an int in Python).
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def invalid_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def check_number(
    body: dict[str, Any], name: str, lo: float | None = None, hi: float | None = None
) -> None:
    value = body.get(name)
    if value is None:
        return
    if not is_number(value):
        raise invalid_type(name, "a number", value)
    _range(name, value, lo, hi)


def check_int(
    body: dict[str, Any], name: str, lo: int | None = None, hi: int | None = MAX_INT
) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT:
        value = int(value)
        body[name] = value
    if not is_int(value):
        raise invalid_type(name, "an integer", value)
    _range(name, value, lo, hi)


def _range(name: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise InvalidRequest(
            f"Invalid '{name}': expected a value >= {lo}, but got {value} instead.",
            param=name,
            code="below_min_value",
        )
    if hi is not None and value > hi:
        raise InvalidRequest(
            f"Invalid '{name}': expected a value <= {hi}, but got {value} instead.",
            param=name,
            code="above_max_value",
        )


def check_type(body: dict[str, Any], name: str, test: Callable[[Any], bool], expected: str) -> None:
    value = body.get(name)
    if value is not None and not test(value):
        raise invalid_type(name, expected, value)


def check_bool(body: dict[str, Any], name: str) -> None:
    check_type(body, name, lambda v: isinstance(v, bool), "a boolean")


def check_str(body: dict[str, Any], name: str) -> None:
    check_type(body, name, lambda v: isinstance(v, str), "a string")


def check_obj(body: dict[str, Any], name: str) -> None:
    check_type(body, name, lambda v: isinstance(v, dict), "an object")


def check_model(body: dict[str, Any], required: bool = True) -> str | None:
    model = body.get("model")
    if model is None:
        if required:
            raise missing("model")
        return None
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    if not model.strip() or len(model) > 512:
        raise InvalidRequest(
            "Invalid 'model': expected a non-empty model name of at most 512 characters.",
            param="model",
            code="invalid_value",
        )
    return model


def check_stop(body: dict[str, Any]) -> None:
    stop = body.get("stop")
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid_type("stop", "a string or an array of strings", stop)


def check_common_sampling(body: dict[str, Any]) -> None:
    check_number(body, "temperature", 0, 2)
    check_number(body, "top_p", 0, 1)
    check_number(body, "presence_penalty", -2, 2)
    check_number(body, "frequency_penalty", -2, 2)
    check_int(body, "n", 1, 128)
    check_int(body, "max_tokens", 1)
    check_int(body, "max_completion_tokens", 1)
    check_int(body, "seed", -MAX_INT, MAX_INT)
    check_bool(body, "stream")
    check_str(body, "user")
    check_obj(body, "metadata")
    check_obj(body, "logit_bias")
    check_obj(body, "extra_body")
    check_stop(body)
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise invalid_type("stream_options", "an object", options)
        include = options.get("include_usage")
        if include is not None and not isinstance(include, bool):
            raise invalid_type("stream_options.include_usage", "a boolean", include)
    check_type(body, "drop_params", lambda v: isinstance(v, bool), "a boolean")
