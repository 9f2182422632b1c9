"""Credentials are removed from upstream messages before a client or a log sees them."""

from __future__ import annotations

import pytest

from apps.gateway.call import header_value, scrub
from apps.providers.schemas import Target


def target(**fields: str) -> Target:
    return Target(deployment_id="d", provider="openai", model="m", **fields)


def test_the_deployment_key_is_removed_wherever_it_appears():
    key = "my-custom-upstream-credential"
    message = f"bad key {key}; again: {key}."
    assert scrub(message, target(api_key=key)) == "bad key ****; again: ****."


def test_access_tokens_are_removed():
    assert scrub("token ya29.abcdef was refused", target(access_token="ya29.abcdef")) == (
        "token **** was refused"
    )


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop",
        "sk-ant-api03-AAAAAAAAAAAA",
        "sk-upstr*********7890",
        "AKIAABCDEFGHIJKLMNOP",
        "AIzaSyA1234567890abcdefghijkl",
    ],
)
def test_key_shaped_strings_are_removed_without_a_target(secret):
    scrubbed = scrub(f"Incorrect API key provided: {secret}. See docs.", None)
    assert secret not in scrubbed
    assert scrubbed.startswith("Incorrect API key provided: ****")


def test_ordinary_text_is_kept():
    message = "The model `gpt-4o` does not exist or you do not have access to it."
    assert scrub(message, target(api_key="sk-abc123456789")) == message


def test_short_keys_are_not_used_as_patterns():
    assert scrub("a b c", target(api_key="a")) == "a b c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpt", b"gpt"),
        ("a\nb", b"a b"),
        ("a\r\nX-Evil: 1", b"a  X-Evil: 1"),
        ("\x00\x7f", b"  "),
        ("é", "é".encode("latin-1")),
        ("模型", b"??"),
    ],
)
def test_header_value(text, expected):
    assert header_value(text) == expected
