"""End to end: client libraries built on the provider SDKs (LangChain's ChatOpenAI and
ChatAnthropic), the OpenAI SDK's async client and curl, with only the base URL and the key
changed, and the request's metadata in the usage row."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import openai
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from tests.gateway.helpers import E2E, usage_rows

pytestmark = E2E


def test_langchain_chat_openai(gateway_server: Any, openai_upstream: Any, make_key: Any) -> None:
    openai_upstream()
    llm = ChatOpenAI(
        model="gpt",
        base_url=gateway_server.url + "/v1",
        api_key=make_key(models=["gpt"]),
        max_retries=0,
        extra_body={"metadata": {"app": "langchain"}},
    )
    assert llm.invoke("hello").content
    streamed = "".join(str(chunk.content) for chunk in llm.stream("hello"))
    assert streamed
    rows = usage_rows(gateway_server, 2)
    assert all(r.metadata == {"app": "langchain"} and r.prompt_tokens > 0 for r in rows)
    assert sorted(r.stream for r in rows) == [False, True]


def test_langchain_chat_anthropic(
    gateway_server: Any, claude_group: Any, anthropic_fake: Any, make_key: Any
) -> None:
    claude_group()
    llm = ChatAnthropic(
        model="claude",
        base_url=gateway_server.url + "/anthropic",
        api_key=make_key(models=["claude"]),
        max_retries=0,
        max_tokens=64,
    )
    assert llm.invoke("hello claude").content
    assert "".join(str(c.content) for c in llm.stream("stream please"))
    rows = usage_rows(gateway_server, 2)
    assert all(r.provider == "anthropic" and r.completion_tokens > 0 for r in rows)
    # ChatAnthropic sends no request metadata (its model_kwargs["metadata"] is dropped).
    assert anthropic_fake.requests[-1].body["model"] == "claude-sonnet-4-5"


def test_openai_async_client(gateway_server: Any, openai_upstream: Any, make_key: Any) -> None:
    openai_upstream()
    key = make_key()

    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=gateway_server.url + "/v1", api_key=key, max_retries=0
        ) as client:
            reply = await client.chat.completions.create(
                model="gpt",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"metadata": {"client": "async"}},
            )
            stream = await client.chat.completions.create(
                model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return str(reply.choices[0].message.content), text

    complete, streamed = asyncio.run(main())
    assert complete and streamed
    rows = usage_rows(gateway_server, 2)
    assert {json.dumps(r.metadata) for r in rows} == {'{"client": "async"}', "{}"}


def test_curl_gemini(gateway_server: Any, gemini_group: Any, google: Any, make_key: Any) -> None:
    gemini_group()
    body = {"contents": [{"role": "user", "parts": [{"text": "hello curl"}]}]}
    out = subprocess.run(
        [
            "curl",
            "-sS",
            f"{gateway_server.url}/gemini/v1beta/models/gem:generateContent?key={make_key()}",
            "-H",
            "content-type: application/json",
            "-d",
            json.dumps(body),
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    answer = json.loads(out.stdout)
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "hello curl"
    assert "key=" not in google.requests[-1].path
    (row,) = usage_rows(gateway_server, 1)
    assert row.prompt_tokens == answer["usageMetadata"]["promptTokenCount"]
