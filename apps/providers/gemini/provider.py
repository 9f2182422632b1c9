"""The Gemini API (``gemini/``, API key) and Vertex AI (``vertex_ai/``, OAuth) translators.

Both speak the same GenerateContent format and differ in URL and credentials:
https://ai.google.dev/api/generate-content (``x-goog-api-key`` header)
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference (bearer token)
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers import urls
from apps.providers.base import (
    BaseProvider,
    SupportsTokenAuth,
    json_request,
    parse_access_token,
    parse_json_object,
)
from apps.providers.gemini import auth, embeddings, native
from apps.providers.gemini.errors import google_error
from apps.providers.gemini.request import CHAT_PARAMS, build_generate_content
from apps.providers.gemini.response import to_chat_completion
from apps.providers.gemini.stream import GeminiStreamDecoder
from apps.providers.schemas import (
    CanonicalRequest,
    JSONDict,
    Op,
    Result,
    Target,
    UpstreamRequest,
)

_STREAM = "streamGenerateContent?alt=sse"


class _GoogleProvider(BaseProvider, abc.ABC):
    """What Gemini and Vertex AI share; each supplies its URLs, auth and embeddings shape."""

    ops = frozenset({Op.CHAT, Op.EMBEDDINGS})
    chat_params: ClassVar[frozenset[str] | None] = CHAT_PARAMS
    embeddings_method: ClassVar[str] = ""

    @abc.abstractmethod
    def url(self, target: Target, method: str) -> str: ...

    @abc.abstractmethod
    def auth_headers(self, target: Target) -> dict[str, str]: ...

    @abc.abstractmethod
    def embeddings_payload(self, body: JSONDict, target: Target) -> JSONDict: ...

    @abc.abstractmethod
    def parse_embeddings(self, data: JSONDict, body: JSONDict, target: Target) -> Result: ...

    @staticmethod
    def model_name(target: Target) -> str:
        model = target.model
        return model[len("models/") :] if model.startswith("models/") else model

    def build_request(self, request: CanonicalRequest, target: Target) -> UpstreamRequest:
        self.check_op(request)
        if request.op is Op.EMBEDDINGS:
            body = self.filter_params(request, target, embeddings.EMBEDDING_PARAMS)
            payload = self.embeddings_payload(body, target)
            method = self.embeddings_method
        else:
            body = self.filter_params(request, target, CHAT_PARAMS)
            payload = build_generate_content(body, self.model_name(target), target.params)
            method = _STREAM if request.stream else "generateContent"
        headers = self.auth_headers(target)
        if target.headers:
            headers.update(target.headers)
        return json_request(self.url(target, method), headers, payload)

    def parse_response(self, request: CanonicalRequest, target: Target, body: bytes) -> Result:
        data = parse_json_object(self.name, body)
        if isinstance(data.get("error"), dict):
            code = data["error"].get("code")
            raise self.parse_error(code if isinstance(code, int) else 502, body, {})
        if request.op is Op.EMBEDDINGS:
            return self.parse_embeddings(data, request.body, target)
        result, usage = to_chat_completion(data, self.model_name(target))
        return Result(data=result, usage=usage)

    def new_stream_decoder(self, request: CanonicalRequest, target: Target) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(self.name, self.model_name(target))

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        return google_error(self.name, status, body, headers)


class GeminiProvider(_GoogleProvider):
    """Google AI Studio's Gemini API, authenticated with an API key."""

    name: ClassVar[str] = "gemini"
    display_name: ClassVar[str] = "Google Gemini"
    default_api_base: ClassVar[str | None] = "https://generativelanguage.googleapis.com/v1beta"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    embeddings_method = "batchEmbedContents"

    def api_base(self, target: Target) -> str:
        if not target.api_base and target.api_version:
            return f"https://generativelanguage.googleapis.com/{target.api_version}"
        return super().api_base(target)

    def url(self, target: Target, method: str) -> str:
        name, _, query = method.partition("?")
        model = urls.segment(self.model_name(target))
        return urls.join(self.api_base(target), f"/models/{model}:{name}", query)

    def native_url(self, target: Target, version: str, method: str, query: dict[str, str]) -> str:
        """A pass-through call's URL: the client's API version and method, the deployment's
        host and model."""
        return native.gemini_url(target, version, self.model_name(target), method, query)

    def auth_headers(self, target: Target) -> dict[str, str]:
        return {"x-goog-api-key": target.api_key} if target.api_key else {}

    def embeddings_payload(self, body: JSONDict, target: Target) -> JSONDict:
        return embeddings.gemini_payload(body, self.model_name(target))

    def parse_embeddings(self, data: JSONDict, body: JSONDict, target: Target) -> Result:
        return embeddings.parse_gemini(data, body, self.model_name(target), self.name)


class VertexAIProvider(_GoogleProvider):
    """Gemini on Vertex AI. Project and location come from ``vertex_project`` and
    ``vertex_location``; the bearer token is ``api_key`` when set (a ready access token),
    otherwise the one the gateway obtained with ``vertex_credentials`` (SupportsTokenAuth)."""

    name: ClassVar[str] = "vertex_ai"
    display_name: ClassVar[str] = "Google Vertex AI"
    default_api_base: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = None
    embeddings_method = "predict"
    default_location: ClassVar[str] = "us-central1"

    @staticmethod
    def _credentials(target: Target) -> JSONDict | None:
        return auth.load_credentials(target.params.get("vertex_credentials"))

    def _project(self, target: Target) -> str:
        project = target.params.get("vertex_project")
        if not project:
            credentials = None if target.api_key else self._credentials(target)
            project = (credentials or {}).get("project_id")
        if not project:
            raise InvalidRequest(
                "vertex_ai: the deployment sets no vertex_project.",
                code="deployment_misconfigured",
            )
        return str(project)

    def url(self, target: Target, method: str) -> str:
        location = str(target.params.get("vertex_location") or self.default_location)
        if target.api_base:
            base = target.api_base
        elif location == "global":
            base = "https://aiplatform.googleapis.com"
        else:
            base = f"https://{urls.segment(location, 'vertex_location')}-aiplatform.googleapis.com"
        if not urls.path_of(base).rsplit("/", 1)[-1].startswith("v1"):
            base = urls.join(base, "/" + urls.segment(target.api_version or "v1", "api_version"))
        model = urls.segment(self.model_name(target))
        resource = f"endpoints/{model}" if model.isdigit() else f"publishers/google/models/{model}"
        project = urls.segment(self._project(target), "vertex_project")
        name, _, query = method.partition("?")
        path = f"/projects/{project}/locations/{urls.segment(location, 'vertex_location')}"
        return urls.join(base, f"{path}/{resource}:{name}", query)

    def native_url(self, target: Target, version: str, method: str, query: dict[str, str]) -> str:
        """A pass-through call's URL: the deployment's regional host, project, location and
        model with the client's API version and method (each path part escaped)."""
        location = str(target.params.get("vertex_location") or self.default_location)
        if target.api_base:
            base = native.unversioned_base(target.api_base)
        elif location == "global":
            base = "https://aiplatform.googleapis.com"
        else:
            base = f"https://{native.segment(location)}-aiplatform.googleapis.com"
        model = native.segment(self.model_name(target))
        resource = f"endpoints/{model}" if model.isdigit() else f"publishers/google/models/{model}"
        project = native.segment(self._project(target))
        path = (
            f"/{version}/projects/{project}/locations/{native.segment(location)}/"
            f"{resource}:{method}"
        )
        return urls.join(base, path, native.query_string(query))

    def auth_headers(self, target: Target) -> dict[str, str]:
        token = target.api_key or target.access_token
        if not token:
            raise InvalidRequest(
                "vertex_ai: the deployment has neither vertex_credentials nor an access token.",
                code="deployment_misconfigured",
            )
        return {"authorization": f"Bearer {token}"}

    def embeddings_payload(self, body: JSONDict, target: Target) -> JSONDict:
        return embeddings.vertex_payload(body)

    def parse_embeddings(self, data: JSONDict, body: JSONDict, target: Target) -> Result:
        return embeddings.parse_vertex(data, body, self.model_name(target), self.name)

    # SupportsTokenAuth

    @property
    def token_auth(self) -> SupportsTokenAuth:
        return self

    def token_cache_key(self, target: Target) -> str | None:
        if target.api_key:
            return None
        credentials = self._credentials(target)
        return auth.cache_key(credentials) if credentials else None

    def build_token_request(self, target: Target, now: float) -> UpstreamRequest:
        credentials = self._credentials(target)
        if credentials is None:
            raise InvalidRequest(
                "vertex_ai: the deployment sets no vertex_credentials.",
                code="deployment_misconfigured",
            )
        return auth.token_request(credentials, now)

    def parse_token_response(self, body: bytes, now: float) -> tuple[str, float]:
        return parse_access_token(self.name, body, now, default_lifetime_s=3600.0)
