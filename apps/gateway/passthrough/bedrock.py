"""``/bedrock/model/{model}/{action}``: boto3's ``bedrock-runtime`` client, unchanged but for
``endpoint_url`` and its credentials (the gateway key as a SigV4 access key id and secret, or
as a bearer token: see ``sigv4``).

``{model}`` (the SDK's ``modelId``) names the model group; the body goes to the deployment's
model unchanged, signed anew with the deployment's own credentials, and the answer (JSON or
the binary event stream) comes back as it is. Converse's ``requestMetadata`` is recorded as
the call's metadata (boto3 validates bodies, so it cannot send other fields).
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_Operations_Amazon_Bedrock_Runtime.html
"""

from __future__ import annotations

from decimal import Decimal

import orjson

from apps.core.errors import InvalidRequest
from apps.gateway.call import Call
from apps.gateway.endpoints import new_request_id, serve_call
from apps.gateway.http import Request, Send
from apps.gateway.passthrough import native
from apps.gateway.passthrough.errors import BEDROCK
from apps.gateway.passthrough.sigv4 import bedrock_token
from apps.providers.bedrock import native as bedrock
from apps.providers.schemas import CanonicalRequest, Op, Target, UpstreamRequest

BEDROCK_PATH = (
    r"^/bedrock/model/(?P<model>.+)/"
    r"(?P<action>converse|converse-stream|invoke|invoke-with-response-stream)$"
)
_CALL_TYPES = {
    "converse": "bedrock:converse",
    "converse-stream": "bedrock:converse-stream",
    "invoke": "bedrock:invoke",
    "invoke-with-response-stream": "bedrock:invoke-stream",
}


def _metadata(raw: bytes) -> tuple[dict[str, object], dict[str, object]]:
    """(the body as JSON when it is an object, its ``requestMetadata``)."""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        return {}, {}
    meta = body.get("requestMetadata")
    return body, dict(meta) if isinstance(meta, dict) else {}


async def bedrock_passthrough(req: Request) -> None:
    params = req.scope.get("path_params", {})
    model = await native.group_name("bedrock", str(params.get("model", "")))
    action = str(params.get("action", ""))
    call = Call(
        request_id=new_request_id(), call_type=_CALL_TYPES.get(action, "bedrock"), dialect=BEDROCK
    )
    state: dict[str, native.NativeCall] = {}

    def parse(raw: bytes) -> CanonicalRequest:
        bedrock.check_action(action)
        native.check_segment(model, "model")
        body, metadata = _metadata(raw)
        client_headers = {
            name: value
            for name in bedrock.FORWARDED_HEADERS
            if (value := req.header(name.encode())) is not None
        }
        stream = action in bedrock.STREAM_ACTIONS

        def build(target: Target) -> UpstreamRequest:
            return bedrock.native_request(target, action, raw, client_headers)

        state["native"] = native.NativeCall(
            route="bedrock",
            providers=frozenset({"bedrock"}),
            build=build,
            usage=lambda data, headers: bedrock.native_usage(action, data, headers),
            scanner=(lambda: bedrock.NativeStreamScanner(action)) if stream else None,
        )
        return CanonicalRequest(
            op=Op.CHAT,
            body={"model": model, "metadata": metadata},
            stream=stream,
            native=body,
            native_format="bedrock",
        )

    async def answer(call: Call, send: Send) -> Decimal | None:
        return await native.answer(call, send, state["native"])

    await serve_call(call, req, parse, token=bedrock_token, answer=answer)
