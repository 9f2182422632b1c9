"""The provider interface: pure translation between the canonical (OpenAI) format and one
upstream API. A provider never performs I/O, never reads Django settings and never touches
the ORM; the gateway sends what it builds and feeds it what comes back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Protocol

import orjson

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers.errors import error_from_openai_body
from apps.providers.schemas import (
    GATEWAY_ONLY_FIELDS,
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    StreamChunk,
    Target,
    UpstreamRequest,
    Usage,
)


class StreamDecoder(Protocol):
    """Created per request, stateful, never shared. Raises UpstreamError for an error event."""

    def feed(self, data: bytes) -> list[StreamChunk]: ...

    def finish(self) -> list[StreamChunk]:
        """Flush what is buffered at the end of the upstream body."""
        ...

    @property
    def usage(self) -> Usage | None: ...


class RelayDecoder(StreamDecoder, Protocol):
    """A decoder of an OpenAI-format stream that can also pass it on as bytes: ``relay``
    returns what to send of each read (parsing only reads that hold usage, an error or the
    end), ``finish_relay`` what is left at the end."""

    @property
    def done(self) -> bool:
        """The upstream sent ``[DONE]``."""
        ...

    @property
    def usage_relayed(self) -> bool:
        """A usage chunk went out among the relayed bytes."""
        ...

    def relay(self, data: bytes, include_usage: bool) -> bytes: ...

    def finish_relay(self, include_usage: bool) -> bytes: ...

    def last_chunk(self) -> StreamChunk | None: ...


class SupportsLocal(Protocol):
    """A provider answered in-process (the ``mock`` provider): no upstream request at all."""

    def local_response(self, request: CanonicalRequest, target: Target) -> Result: ...

    def local_stream(self, request: CanonicalRequest, target: Target) -> Iterable[StreamChunk]: ...

    def local_latency_s(self, target: Target) -> tuple[float, float]:
        """(seconds before the first byte, seconds between stream chunks)."""
        ...


class NativeStreamScanner(Protocol):
    """Watches a relayed native stream: ``feed`` returns the bytes to send (unchanged),
    recording usage and an in-stream error event (which the client receives as is)."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def error(self) -> UpstreamError | None: ...

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class SupportsNative(Protocol):
    """A provider whose API is also a client-facing format (Anthropic Messages): requests in
    that format pass through untranslated and answers are relayed byte for byte."""

    native_format: ClassVar[str]

    def build_native_request(
        self, body: JSONDict, target: Target, client_headers: Mapping[str, str] | None = None
    ) -> UpstreamRequest: ...

    def native_usage(self, body: bytes) -> Usage: ...

    def native_stream_scanner(self) -> NativeStreamScanner: ...


class SupportsCountTokens(Protocol):
    """A provider with a token-counting endpoint for requests in its native format."""

    def build_count_tokens_request(
        self, body: JSONDict, target: Target, client_headers: Mapping[str, str] | None = None
    ) -> UpstreamRequest: ...


class SupportsTokenAuth(Protocol):
    """A provider that trades long-lived credentials for a short-lived access token (Vertex AI,
    Entra ID). The gateway sends the token request, caches the token until shortly before
    ``expires_at`` and passes it as ``Target.access_token``."""

    def token_cache_key(self, target: Target) -> str | None:
        """None when the target needs no token (e.g. an API key is configured)."""
        ...

    def build_token_request(self, target: Target, now: float) -> UpstreamRequest: ...

    def parse_token_response(self, body: bytes, now: float) -> tuple[str, float]:
        """(access token, expiry as a UNIX time)."""
        ...


class Provider(Protocol):
    """What the gateway calls on a provider. Every provider translates requests, answers,
    stream events and errors; the optional capabilities are declared, each as the provider
    itself seen through a small protocol, or None when it has not got it."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    ops: ClassVar[frozenset[Op]]
    # The environment variable read for the key when a deployment sets none (as LiteLLM does).
    api_key_env: ClassVar[str | None]

    def build_request(self, request: CanonicalRequest, target: Target) -> UpstreamRequest: ...

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result: ...

    def new_stream_decoder(self, request: CanonicalRequest, target: Target) -> StreamDecoder: ...

    def new_relay_decoder(self, request: CanonicalRequest, target: Target) -> RelayDecoder | None:
        """A decoder that passes the stream on as bytes, when the upstream's stream format is
        OpenAI's; None otherwise."""
        ...

    def parse_error(
        self, status: int, body: bytes, headers: Mapping[str, str]
    ) -> UpstreamError: ...

    @property
    def local(self) -> SupportsLocal | None:
        """Answers in-process, with no upstream."""
        ...

    @property
    def native(self) -> SupportsNative | None:
        """Speaks a client-facing format natively."""
        ...

    @property
    def count_tokens(self) -> SupportsCountTokens | None:
        """Counts tokens upstream."""
        ...

    @property
    def token_auth(self) -> SupportsTokenAuth | None:
        """Needs a short-lived access token fetched by the gateway."""
        ...


class BaseProvider:
    """Shared helpers; concrete providers subclass it and implement the Protocol."""

    name: ClassVar[str] = ""
    ops: ClassVar[frozenset[Op]] = frozenset({Op.CHAT})
    default_api_base: ClassVar[str | None] = None
    # Parameters this provider accepts for chat; None means forward everything untouched.
    chat_params: ClassVar[frozenset[str] | None] = None
    display_name: ClassVar[str] = ""
    api_key_env: ClassVar[str | None] = None

    # Optional capabilities: none unless a provider overrides them (returning itself).

    def new_relay_decoder(self, request: CanonicalRequest, target: Target) -> RelayDecoder | None:
        return None

    @property
    def local(self) -> SupportsLocal | None:
        return None

    @property
    def native(self) -> SupportsNative | None:
        return None

    @property
    def count_tokens(self) -> SupportsCountTokens | None:
        return None

    @property
    def token_auth(self) -> SupportsTokenAuth | None:
        return None

    def api_base(self, target: Target) -> str:
        base = target.api_base or self.default_api_base
        if not base:
            raise InvalidRequest(
                f"Deployment of provider '{self.name}' has no api_base configured.",
                code="deployment_misconfigured",
            )
        return base.rstrip("/")

    def check_op(self, request: CanonicalRequest) -> None:
        if request.op not in self.ops:
            raise InvalidRequest(
                f"Provider '{self.name}' does not support {request.op.value}.",
                code="unsupported_operation",
            )

    def filter_params(
        self, request: CanonicalRequest, target: Target, supported: frozenset[str]
    ) -> JSONDict:
        """The body without parameters the provider does not take.

        Dropped when drop_params is on (request, deployment or global); otherwise a 400 naming
        the parameter and the provider. ``additional_drop_params`` are always dropped.
        """
        drop = request.drop_params if request.drop_params is not None else target.drop_params
        out: JSONDict = {}
        for key, value in request.body.items():
            if key in target.additional_drop_params or key in GATEWAY_ONLY_FIELDS:
                continue
            if key in supported or key == "model":
                out[key] = value
            elif drop or value is None:
                continue
            else:
                raise InvalidRequest(
                    f"Parameter '{key}' is not supported by provider '{self.name}'. "
                    "Set drop_params to drop it.",
                    param=key,
                    code="unsupported_parameter",
                )
        return out

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return error_from_openai_body(self.name, status, body, headers)


def finish_payload(payload: JSONDict, body: JSONDict, target: Target) -> JSONDict:
    """``payload`` (changed in place) with the client's ``extra_body`` merged in, the
    deployment's ``additional_drop_params`` removed and the upstream model name set."""
    extra = body.get("extra_body")
    if isinstance(extra, dict):
        payload.update(extra)
    for key in target.additional_drop_params:
        payload.pop(key, None)
    payload["model"] = target.model
    return payload


def json_request(
    url: str, headers: Mapping[str, str], payload: JSONDict, method: str = "POST"
) -> UpstreamRequest:
    return UpstreamRequest(
        method=method,
        url=url,
        headers={"content-type": "application/json", **headers},
        body=orjson.dumps(payload),
    )


def parse_access_token(
    provider: str, body: bytes, now: float, *, default_lifetime_s: float
) -> tuple[str, float]:
    """(access token, expiry as a UNIX time) from an OAuth 2.0 token endpoint's success
    response (https://www.rfc-editor.org/rfc/rfc6749#section-5.1). ``expires_in`` may come as a
    number or a numeric string; without one the token is taken to live ``default_lifetime_s``.

    Raises UpstreamError (502) when the answer carries no access_token."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        data = {}
    token: str = data.get("access_token") or ""
    if not token:
        raise UpstreamError(
            f"{provider} error: the token endpoint answered without an access_token.",
            upstream_status=200,
        )
    lifetime = data.get("expires_in")
    try:
        seconds = float(lifetime) if lifetime is not None else default_lifetime_s
    except (TypeError, ValueError):
        seconds = default_lifetime_s
    return token, now + max(seconds, 0.0)


def parse_json_object(provider: str, body: bytes) -> JSONDict:
    """Parse an upstream success body that must be a JSON object; 502 otherwise."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            f"{provider} returned a response that is not valid JSON.", upstream_status=200
        ) from exc
    if not isinstance(data, dict):
        raise UpstreamError(f"{provider} returned an unexpected response.", upstream_status=200)
    return data
