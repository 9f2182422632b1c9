"""A fake AWS Bedrock runtime on loopback, speaking Converse JSON and ConverseStream's binary
event stream, for end-to-end tests.

It authenticates like Bedrock: a Bedrock API key as ``Authorization: Bearer``, or a SigV4
signature that it recomputes with botocore from the known test credentials over the request it
actually received (method, raw path, signed headers, body bytes). Every request is recorded in
``app[REQUESTS]``.

InvokeModel answers as Anthropic models on Bedrock do (a Messages body, the token counts also
in ``X-Amzn-Bedrock-*-Token-Count`` headers); InvokeModelWithResponseStream sends ``chunk``
events whose base64 ``bytes`` hold Messages stream events, the last with
``amazon-bedrock-invocationMetrics``.

Behaviour is chosen by the model id in the path:
- ``error-<ExceptionName>`` answers that error with Bedrock's status, header and body;
- ``stream-error-<eventName>`` streams a little text, then that exception event;
- anything else answers: a toolUse of the first tool when tools are offered and the last user
  turn holds no toolResult; a reply quoting the tool result after one; else a greeting that
  quotes the last user text.

Wire formats: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
API_runtime_ConverseStream.html, https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any
from unittest import mock

import orjson
from aiohttp import web
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.leaks import secret

ACCESS_KEY = "AKIDEXAMPLEBEDROCK01"
SECRET_KEY = secret("bedrock-test-secret-key/0123456789abcdef")
SESSION_TOKEN = secret("bedrock-test-session-token")
API_KEY = secret("ABSKbedrock-test-api-key")
REGION = "us-east-1"

# Exception name -> (status, message), as the API reference lists them.
ERRORS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "1 validation error detected: Value at 'messages' failed"),
    "ContextTooLong": (400, "Input is too long for requested model."),
    "AccessDeniedException": (
        403,
        "You don't have access to the model with the specified model ID.",
    ),
    "ResourceNotFoundException": (404, "The provided model identifier is invalid."),
    "ModelTimeoutException": (408, "Model has timed out in processing the request."),
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "ModelNotReadyException": (429, "Model is not ready for inference."),
    "ModelErrorException": (424, "The model returned an error."),
    "InternalServerException": (500, "The server encountered an internal error."),
    "ServiceUnavailableException": (503, "Bedrock is unable to process your request."),
}
_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


@dataclass
class RecordedRequest:
    method: str
    path: str
    raw_path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class FakeConfig:
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    session_token: str | None = None
    region: str = REGION
    api_key: str = API_KEY
    tool_input: Any = None
    # Bytes per write when streaming, to cut frames at odd places; 0 writes whole frames.
    split_every: int = 0


REQUESTS = web.AppKey("bedrock_requests", list[RecordedRequest])
CONFIG = web.AppKey("bedrock_config", FakeConfig)


# ---- event stream encoding ---------------------------------------------------------------


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers (value type 7) and both CRCs."""
    raw_headers = b""
    for name, value in headers.items():
        name_b, value_b = name.encode(), value.encode()
        raw_headers += bytes([len(name_b)]) + name_b + b"\x07"
        raw_headers += struct.pack(">H", len(value_b)) + value_b
    total = 16 + len(raw_headers) + len(payload)
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    # Bedrock pads event payloads with a "p" field.
    payload = orjson.dumps({**body, "p": "abcdefghijklmnop"[: 1 + len(event_type) % 16]})
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, payload)


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, orjson.dumps({"message": message}))


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """Frames for fixture events: {"event": name, "payload": {...}} or
    {"exception": name, "message": "..."}."""
    out = b""
    for item in events:
        if "exception" in item:
            out += exception_frame(item["exception"], item["message"])
        else:
            out += event_frame(item["event"], item["payload"])
    return out


# ---- authentication ------------------------------------------------------------------------

_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]+)"
)


def _error(status: int, error_type: str | None, message: str, key: str = "message") -> web.Response:
    headers = {"x-amzn-RequestId": "5f1c1b52-0000-4000-8000-000000000000"}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type + _NAMESPACE
    return web.json_response({key: message}, status=status, headers=headers)


def expected_authorization(
    request: web.Request, body: bytes, config: FakeConfig, signed: list[str]
) -> str:
    """The Authorization header botocore computes for what was received."""
    headers = {name: request.headers.get(name, "") for name in signed}
    aws = AWSRequest(
        method=request.method,
        url=f"http://{request.host}{request.raw_path}",
        data=body,
        headers=headers,
    )
    when = dt.datetime.strptime(request.headers.get("x-amz-date", ""), SIGV4_TIMESTAMP)
    creds = Credentials(config.access_key, config.secret_key, config.session_token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(creds, "bedrock", config.region).add_auth(aws)
    return str(aws.headers["Authorization"])


def check_auth(request: web.Request, body: bytes, config: FakeConfig) -> web.Response | None:
    """None when the request is authenticated, else Bedrock's rejection."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        if header[7:] == config.api_key:
            return None
        return _error(
            403, None, "Authentication failed: Please make sure your API Key is valid.", "Message"
        )
    match = _AUTH_RE.fullmatch(header)
    if match is None:
        return _error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    if match["key"] != config.access_key or (
        config.session_token is not None
        and request.headers.get("x-amz-security-token") != config.session_token
    ):
        return _error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    try:
        expected = expected_authorization(request, body, config, match["signed"].split(";"))
    except ValueError:
        expected = ""
    if expected != header:
        return _error(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should have "
            f"been\n'POST\n{request.raw_path}\n\nx-amz-security-token:{config.session_token}'",
        )
    return None


# ---- answers -------------------------------------------------------------------------------


def _last_user_blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    for message in reversed(payload.get("messages") or []):
        if message.get("role") == "user":
            return list(message.get("content") or [])
    return []


def _answer(payload: dict[str, Any], config: FakeConfig) -> tuple[list[dict[str, Any]], str]:
    """(content blocks, stopReason) for a request."""
    blocks = _last_user_blocks(payload)
    results = [b["toolResult"] for b in blocks if "toolResult" in b]
    tools = (payload.get("toolConfig") or {}).get("tools") or []
    if results:
        text = " ".join(
            c.get("text", "") for r in results for c in r.get("content", []) if "text" in c
        )
        return [{"text": f"The tool says: {text}"}], "end_turn"
    if tools:
        name = tools[0]["toolSpec"]["name"]
        tool_input = config.tool_input or {"location": "Paris", "unit": "celsius"}
        use = {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": name, "input": tool_input}
        return [{"text": "Let me check."}, {"toolUse": use}], "tool_use"
    said = " ".join(b["text"] for b in blocks if "text" in b)
    return [{"text": f"Héllo from Bedrock ✓ — you said: {said}"}], "end_turn"


def _usage(payload: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, int]:
    prompt = len(orjson.dumps(payload.get("messages"))) // 8 + 1
    completion = len(orjson.dumps(blocks)) // 8 + 1
    return {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}


def converse_body(payload: dict[str, Any], config: FakeConfig) -> dict[str, Any]:
    blocks, stop = _answer(payload, config)
    return {
        "output": {"message": {"role": "assistant", "content": blocks}},
        "stopReason": stop,
        "usage": _usage(payload, blocks),
        "metrics": {"latencyMs": 321},
    }


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def stream_frames(payload: dict[str, Any], config: FakeConfig) -> list[bytes]:
    blocks, stop = _answer(payload, config)
    frames = [event_frame("messageStart", {"role": "assistant"})]
    for index, block in enumerate(blocks):
        if "text" in block:
            for piece in _pieces(block["text"]):
                delta = {"contentBlockIndex": index, "delta": {"text": piece}}
                frames.append(event_frame("contentBlockDelta", delta))
        else:
            use = block["toolUse"]
            start = {"toolUseId": use["toolUseId"], "name": use["name"]}
            frames.append(
                event_frame(
                    "contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": start}}
                )
            )
            arguments = orjson.dumps(use["input"]).decode()
            for cut in range(0, len(arguments), 7):
                delta = {"toolUse": {"input": arguments[cut : cut + 7]}}
                frames.append(
                    event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
                )
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(event_frame("messageStop", {"stopReason": stop}))
    metadata = {"usage": _usage(payload, blocks), "metrics": {"latencyMs": 321}}
    frames.append(event_frame("metadata", metadata))
    return frames


def _invoke_text(payload: dict[str, Any]) -> str:
    said = ""
    for message in reversed(payload.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            said = (
                content
                if isinstance(content, str)
                else " ".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
            )
            break
    return f"Invoked: {said}"


def _invoke_counts(payload: dict[str, Any], text: str) -> tuple[int, int]:
    return len(orjson.dumps(payload.get("messages"))) // 8 + 1, len(text) // 4 + 1


def invoke_body(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    text = _invoke_text(payload)
    prompt, completion = _invoke_counts(payload, text)
    body = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20240620",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": prompt, "output_tokens": completion},
    }
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(prompt),
        "X-Amzn-Bedrock-Output-Token-Count": str(completion),
        "X-Amzn-Bedrock-Invocation-Latency": "321",
    }
    return body, headers


def chunk_frame(event: dict[str, Any]) -> bytes:
    payload = {"bytes": base64.b64encode(orjson.dumps(event)).decode(), "p": "abcd"}
    headers = {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, orjson.dumps(payload))


def invoke_stream_frames(payload: dict[str, Any]) -> list[bytes]:
    text = _invoke_text(payload)
    prompt, completion = _invoke_counts(payload, text)
    start = {"id": "msg_bdrk_02", "type": "message", "role": "assistant", "content": []}
    start["usage"] = {"input_tokens": prompt, "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    for piece in _pieces(text):
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
        )
    events.append({"type": "content_block_stop", "index": 0})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": completion},
        }
    )
    metrics = {"inputTokenCount": prompt, "outputTokenCount": completion, "invocationLatency": 321}
    events.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})
    return [chunk_frame(e) for e in events]


async def _handle(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    request.app[REQUESTS].append(
        RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            headers=dict(request.headers),
            body=body,
        )
    )
    config = request.app[CONFIG]
    rejection = check_auth(request, body, config)
    if rejection is not None:
        return rejection
    model = request.match_info["model"]
    if model.startswith("error-"):
        name = model.removeprefix("error-")
        status, message = ERRORS[name]
        return _error(status, "ValidationException" if name == "ContextTooLong" else name, message)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(400, "SerializationException", "Could not parse the request body.")
    action = request.match_info["action"]
    if action == "converse":
        return web.json_response(converse_body(payload, config))
    if action == "invoke":
        body, headers = invoke_body(payload)
        return web.json_response(body, headers=headers)

    response = web.StreamResponse(
        headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "x-amzn-RequestId": "5f1c1b52-0000-4000-8000-000000000001",
        }
    )
    await response.prepare(request)
    if action == "invoke-with-response-stream":
        frames = invoke_stream_frames(payload)
    elif model.startswith("stream-error-"):
        frames = stream_frames(payload, config)[:3]
        frames.append(exception_frame(model.removeprefix("stream-error-"), "Stream failed."))
    else:
        frames = stream_frames(payload, config)
    data = b"".join(frames)
    step = config.split_every
    if step:
        for cut in range(0, len(data), step):
            await response.write(data[cut : cut + step])
    else:
        for frame in frames:
            await response.write(frame)
    await response.write_eof()
    return response


def create_app(**config: Any) -> web.Application:
    """The fake Bedrock runtime; ``config`` overrides FakeConfig fields."""
    app = web.Application()
    app[REQUESTS] = []
    app[CONFIG] = FakeConfig(**config)
    app.router.add_post(
        "/model/{model:.+}/{action:converse|converse-stream|invoke|invoke-with-response-stream}",
        _handle,
    )
    return app
