"""Credentials at rest (encrypted) and by reference (os.environ/NAME)."""

from __future__ import annotations

import pytest

from apps.core import secrets
from apps.core.secrets import SecretError, encrypt, redact, resolve, resolve_value


def test_literal_is_encrypted_and_resolves_back():
    stored = encrypt("sk-upstream-123")
    assert stored.startswith("enc:v1:")
    assert "sk-upstream-123" not in stored
    assert resolve(stored) == "sk-upstream-123"
    assert encrypt(stored) == stored  # never twice


def test_reference_is_kept_and_read_when_used(monkeypatch):
    assert encrypt("os.environ/MY_KEY") == "os.environ/MY_KEY"
    monkeypatch.setenv("MY_KEY", "sk-env")
    assert resolve("os.environ/MY_KEY") == "sk-env"
    monkeypatch.delenv("MY_KEY")
    assert resolve("os.environ/MY_KEY") is None


@pytest.mark.parametrize("value", [None, ""])
def test_empty_values(value):
    assert resolve(value) is None
    assert redact(value) == ""


def test_plain_legacy_value_resolves_as_is():
    assert resolve("sk-plain") == "sk-plain"


def test_another_encryption_key_cannot_decrypt(settings):
    stored = encrypt("sk-upstream-123")
    settings.PROXY_ENCRYPTION_KEY = "a-different-key"
    with pytest.raises(SecretError) as info:
        resolve(stored)
    assert "sk-upstream" not in str(info.value)


def test_redact_never_shows_a_literal():
    assert redact("sk-upstream-123") == "****"
    assert redact(encrypt("sk-upstream-123")) == "****"
    assert redact("os.environ/KEY") == "os.environ/KEY"


def test_resolve_value_reads_references_only(monkeypatch):
    monkeypatch.setenv("REGION", "eu-west-1")
    assert resolve_value("os.environ/REGION") == "eu-west-1"
    assert resolve_value(5) == 5
    assert resolve_value("plain") == "plain"


def test_fernet_keys_are_cached_per_material():
    assert secrets._fernet("a") is secrets._fernet("a")
