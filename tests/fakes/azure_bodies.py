"""The bodies the fake Azure OpenAI resource answers with: Azure's error shape, content
filter results, chat and completion answers and stream chunks, embeddings (tests/fakes/azure.py
has the routes and which deployment name does what)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import orjson
from aiohttp import web

SAFE = {"filtered": False, "severity": "safe"}
CHOICE_FILTERS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTERS = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            **CHOICE_FILTERS,
            "jailbreak": {"filtered": False, "detected": False},
        },
    }
]
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Invalid value for 'temperature'."),
    401: (
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.",
    ),
    403: ("PermissionDenied", "Principal does not have access to API/Operation."),
    404: (
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment "
        "within the last 5 minutes, please wait a moment and try again.",
    ),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        "Please retry after 6 seconds.",
    ),
    500: ("InternalServerError", "The server had an error while processing your request."),
    503: (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
}


def azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def content_filter() -> web.Response:
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy. Please modify your prompt and retry. To learn more "
            "about our content filtering policies please read our documentation: "
            "https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **CHOICE_FILTERS,
                    "violence": {"filtered": True, "severity": "high"},
                    "jailbreak": {"filtered": False, "detected": False},
                },
            },
        }
    }
    return web.json_response(body, status=400)


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return str(content)
    return ""


def token_usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = len(prompt.split()) + 3, len(completion.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def reply(deployment: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(assistant message, finish_reason) for a chat request."""
    messages = body.get("messages") or []
    tool_result = next((m for m in reversed(messages) if m.get("role") == "tool"), None)
    choice = body.get("tool_choice")
    forced = choice not in (None, "auto", "none")
    if (deployment == "tool-caller" or forced) and body.get("tools") and tool_result is None:
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        name = named or body["tools"][0]["function"]["name"]
        call = {
            "id": "call_azure_1",
            "type": "function",
            "function": {"name": name, "arguments": '{"location": "Paris"}'},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    if deployment == "filtered-output":
        return {"role": "assistant", "content": None}, "content_filter"
    text = f"The tool said: {tool_result['content']}" if tool_result else last_user_text(body)
    return {"role": "assistant", "content": text}, "stop"


def chat(deployment: str, body: dict[str, Any]) -> dict[str, Any]:
    message, finish = reply(deployment, body)
    filters = dict(CHOICE_FILTERS)
    if finish == "content_filter":
        filters["violence"] = {"filtered": True, "severity": "medium"}
    return {
        "id": "chatcmpl-fakeazure",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_fakeazure",
        "prompt_filter_results": PROMPT_FILTERS,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "logprobs": None,
                "message": {**message, "refusal": None},
                "content_filter_results": filters,
            }
        ],
        "usage": token_usage(last_user_text(body), message.get("content") or ""),
    }


def prompt_filter_chunk() -> dict[str, Any]:
    return {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": PROMPT_FILTERS,
    }


async def chat_stream(
    request: web.Request, deployment: str, body: dict[str, Any]
) -> web.StreamResponse:
    message, finish = reply(deployment, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {
        "id": "chatcmpl-fakeazure",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_fakeazure",
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return {**base, "choices": [{**choice, "content_filter_results": CHOICE_FILTERS}]}

    chunks = [prompt_filter_chunk(), chunk({"role": "assistant", "content": ""})]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        arguments = call["function"]["arguments"]
        for part in (arguments[:10], arguments[10:]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
    else:
        words = (message.get("content") or "").split(" ")
        chunks += [chunk({"content": w if n == 0 else " " + w}) for n, w in enumerate(words)]
    chunks.append(chunk({}, finish))
    if include_usage:
        usage = token_usage(last_user_text(body), message.get("content") or "")
        chunks.append({**base, "choices": [], "usage": usage})
    if deployment == "stream-error":
        error = {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        chunks = [*chunks[:3], error]
    return await sse(request, chunks, done=deployment != "stream-error")


async def sse(
    request: web.Request, chunks: list[dict[str, Any]], done: bool = True
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for item in chunks:
        await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
    if done:
        await response.write(b"data: [DONE]\n\n")
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def embeddings(deployment: str, body: dict[str, Any]) -> web.Response:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    tokens = sum(len(str(i).split()) for i in items)
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": [0.1 * (n + 1), -0.2, 0.3]}
                for n, _ in enumerate(items)
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
