"""Azure OpenAI error responses -> UpstreamError.

Azure answers in OpenAI's error shape (``{"error": {"code", "message", "param", "type"}}``),
except that ``code`` is often the HTTP status as a string ("401", "429") or an Azure name
("DeploymentNotFound"), and a prompt stopped by the content filter is a 400 with
``code: "content_filter"`` and an ``innererror`` (``inner_error`` in the OpenAPI spec) whose
``code`` is ``ResponsibleAIPolicyViolation`` and whose ``content_filter_result(s)`` names the
categories that fired.

https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter
https://github.com/Azure/azure-rest-api-specs/blob/main/specification/cognitiveservices/
data-plane/AzureOpenAI/inference/stable/2024-10-21/inference.json (errorResponse, innerError)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.errors import error_from_openai_body, retry_after_headers

CONTENT_FILTER_CODES = frozenset({"content_filter", "ResponsibleAIPolicyViolation"})
# Codes given to errors whose upstream code is only the HTTP status.
_CODE_BY_STATUS = {
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
}


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def _inner(err: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = err.get("innererror", err.get("inner_error"))
    return inner if isinstance(inner, dict) else {}


def filtered_categories(results: Any) -> list[str]:
    """The content filter categories marked ``filtered``, with their severity when not safe:
    ``["violence (medium)", "jailbreak"]``."""
    out: list[str] = []
    if not isinstance(results, dict):
        return out
    for name, result in results.items():
        if isinstance(result, dict) and result.get("filtered") is True:
            severity = result.get("severity")
            label = f"{name} ({severity})" if severity and severity != "safe" else str(name)
            out.append(label)
        elif isinstance(result, list) and any(
            isinstance(item, dict) and item.get("filtered") is True for item in result
        ):
            out.append(str(name))  # custom_blocklists in older API versions
    return out


def is_content_filter(err: Mapping[str, Any]) -> bool:
    return err.get("code") in CONTENT_FILTER_CODES or _inner(err).get("code") in (
        CONTENT_FILTER_CODES
    )


def content_filter_error(
    provider: str, status: int, err: Mapping[str, Any], headers: Mapping[str, str]
) -> UpstreamError:
    """A prompt refused by Azure's content filter: OpenAI's content_policy_violation (400)."""
    inner = _inner(err)
    categories = filtered_categories(
        inner.get("content_filter_result", inner.get("content_filter_results"))
    )
    message = str(err.get("message") or "The prompt was refused by the content filter.")
    if categories:
        message += f" (content filter: {', '.join(categories)})"
    param = err.get("param")
    return UpstreamError(
        f"{provider} error: {message}",
        upstream_status=status,
        http_status=400,
        type="invalid_request_error",
        code="content_policy_violation",
        param=param if isinstance(param, str) else None,
        headers=retry_after_headers(headers),
        retryable=False,
    )


def azure_error(
    provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """Map an Azure OpenAI error response; statuses follow ``map_status``."""
    err = _error_object(body)
    if is_content_filter(err):
        return content_filter_error(provider, status, err, headers)
    error = error_from_openai_body(provider, status, body, headers)
    if error.code is not None and error.code.isdigit():
        # "code": "429" says nothing the status does not: use the OpenAI code for the status.
        error.code = _CODE_BY_STATUS.get(error.http_status, UpstreamError.code)
    return error
