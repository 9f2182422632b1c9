"""One client request on its way through the gateway, and the usage row it leaves.

The call's outcome (status and error) has one owner: only the methods below set it, so a
failure is recorded the same way wherever it is found (before the answer, mid-stream, in an
upstream's own stream error event).
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from apps.core.errors import GatewayError
from apps.gateway.client_credentials import ClientCredentials
from apps.gateway.dialects.base import Dialect
from apps.keys.auth import Principal
from apps.keys.limits import Admission
from apps.providers.schemas import CanonicalRequest, Target, Usage
from apps.routing.selectors import Candidate
from apps.usage.services import UsageEvent, stores_bodies, usage_record

# nginx's code for a client that closed the connection before the answer: the row says so.
STATUS_CLIENT_CLOSED = 499

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_value(text: str) -> bytes:
    """``text`` (the client's own model name, say) made safe as a header value: a control
    character would make the server refuse the response or split the header."""
    return _CONTROL.sub(" ", text).encode("latin-1", "replace")


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*.]{6,}|AKIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_\-]{20,})")


def scrub(message: str, target: Target | None) -> str:
    """Remove anything that looks like a credential from an upstream message."""
    if target is not None:
        for secret in (target.api_key, target.access_token):
            if secret and len(secret) >= 4:
                message = message.replace(secret, "****")
    return _KEYLIKE.sub("****", message)


_ID = re.compile(rb'"id"\s*:\s*"([^"\\]{1,255})"')


def response_id_of(data: bytes | None) -> str:
    """The first ``"id"`` in the first bytes of an answer or stream (its own id, which every
    format puts before any content)."""
    if not data:
        return ""
    match = _ID.search(data, 0, 1024)
    return match[1].decode("utf-8", "replace") if match else ""


class Call:
    """One client request on its way through the gateway."""

    __slots__ = (
        "_error",
        "_status",
        "admission",
        "body_done",
        "call_type",
        "candidate",
        "client_credentials",
        "default_model",
        "dialect",
        "fallback_from",
        "fallbacks",
        "group_name",
        "headers_sent",
        "principal",
        "record",
        "region",
        "request",
        "request_id",
        "response_body",
        "response_id",
        "retries",
        "start_time",
        "t0",
        "tags",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        *,
        request_id: str,
        call_type: str,
        dialect: Dialect,
    ) -> None:
        self.request_id = request_id
        self.call_type = call_type
        self.dialect = dialect
        self.principal: Principal | None = None
        self.request: CanonicalRequest | None = None
        self.t0 = time.perf_counter()
        self.start_time: datetime = timezone.now()
        self.candidate: Candidate | None = None
        # Provider credentials the client sent for this request only (never logged).
        self.client_credentials: ClientCredentials | None = None
        self.group_name = ""
        # Retries and fallback groups tried, and the group asked for when a fallback answered.
        self.retries = 0
        self.fallbacks = 0
        self.fallback_from = ""
        # False for a call whose parts leave their own usage rows (a batch completion).
        self.record = True
        self.usage: Usage | None = None
        self._status = 200
        self._error: GatewayError | None = None
        self.ttft_ms: int | None = None
        # The answer's own id (``chatcmpl-…``), so the usage row can be found by it.
        self.response_id = ""
        # The answer as sent, kept only when the call's bodies are stored.
        self.response_body: bytes | None = None
        # Tags from the ``x-litellm-tags`` header, added to the body's ``metadata.tags``.
        self.tags: list[str] = []
        self.headers_sent = False
        # The response's last byte went to the client (nothing may be sent after it).
        self.body_done = False
        # The caller's limits this call passed (None: nothing limits it).
        self.admission: Admission | None = None
        # The end user's region ("eu", "us": only deployments there) and the model group that
        # serves it when the requested one has no deployment in that region.
        self.region = ""
        self.default_model = ""

    @property
    def status(self) -> int:
        return self._status

    @property
    def error(self) -> GatewayError | None:
        return self._error

    def failed(self, err: GatewayError) -> None:
        """The call ends in ``err``. Any credential of the deployment in use is scrubbed from
        its message first."""
        err.message = scrub(err.message, self.candidate.target if self.candidate else None)
        self._error = err
        self._status = err.http_status

    def client_closed(self) -> None:
        """The client went away before the answer was complete."""
        self._status = STATUS_CLIENT_CLOSED

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.t0) * 1000)

    def response_headers(self, cost: Decimal | None = None) -> list[tuple[bytes, bytes]]:
        rid = self.request_id.encode()
        headers = [(b"x-request-id", rid), (b"x-litellm-call-id", rid)]
        if self.group_name:
            headers.append((b"x-litellm-model-group", header_value(self.group_name)))
        if self.candidate is not None:
            target = self.candidate.target
            headers.append((b"x-litellm-model-id", target.deployment_id.encode()))
            headers.append((b"x-gateway-provider", target.provider.encode()))
            headers.append((b"x-litellm-attempted-retries", str(self.retries).encode()))
            headers.append((b"x-litellm-attempted-fallbacks", str(self.fallbacks).encode()))
        if cost is not None:
            headers.append((b"x-litellm-response-cost", format(cost.normalize(), "f").encode()))
        if self.admission is not None:
            headers += self.admission.headers()
        if self.region:
            headers.append((b"x-litellm-model-region", self.region.encode()))
        return headers

    def _metadata(self, given: object) -> dict[str, object]:
        """The body's ``metadata`` (LiteLLM's way to tag a call), with the header's tags."""
        metadata: dict[str, object] = given if isinstance(given, dict) else {}
        if self.tags:
            known = metadata.get("tags")
            tags = [t for t in known if isinstance(t, str)] if isinstance(known, list) else []
            metadata = {**metadata, "tags": tags + [t for t in self.tags if t not in tags]}
        return metadata

    def finish(self, cost: Decimal | None = None) -> Decimal:
        """Queue this call's usage row; returns its cost (computed unless given)."""
        if not self.record:
            return Decimal(0)
        body = self.request.body if self.request is not None else {}
        err = self._error
        user, metadata = body.get("user"), body.get("metadata")
        return usage_record(
            UsageEvent(
                request_id=self.request_id,
                call_type=self.call_type,
                principal=self.principal,
                model_group=self.group_name or str(body.get("model") or "")[:255],
                start_time=self.start_time,
                latency_ms=self.elapsed_ms(),
                status_code=self._status,
                stream=bool(self.request and self.request.stream),
                candidate=self.candidate,
                usage=self.usage,
                cost=cost,
                end_user=user if isinstance(user, str) else "",
                error_type=(err.code or err.type or "") if err else "",
                error_message=err.message if err else "",
                ttft_ms=self.ttft_ms,
                metadata=self._metadata(metadata),
                response_id=self.response_id,
                request_body=body if body and stores_bodies(self.principal) else None,
                response_body=self.response_body,
                retries=self.retries,
                fallbacks=self.fallbacks,
                fallback_from=self.fallback_from,
            )
        )
