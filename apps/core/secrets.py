"""Secrets at rest and by reference.

A credential is either a reference ``os.environ/NAME`` (the config-file form, resolved when used)
or a literal value, stored encrypted with a Fernet key derived from ``PROXY_ENCRYPTION_KEY``
(``SECRET_KEY`` when unset). Nothing here logs a value.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache
from typing import overload

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

ENV_PREFIX = "os.environ/"
_ENC_PREFIX = "enc:v1:"


class SecretError(Exception):
    pass


@lru_cache(maxsize=4)
def _fernet(material: str) -> Fernet:
    key = base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())
    return Fernet(key)


def _current() -> Fernet:
    return _fernet(settings.PROXY_ENCRYPTION_KEY or settings.SECRET_KEY)


def is_reference(value: str) -> bool:
    return value.startswith(ENV_PREFIX)


def encrypt(value: str) -> str:
    """Return the stored form of ``value``: references stay as they are, literals are encrypted."""
    if not value or is_reference(value) or value.startswith(_ENC_PREFIX):
        return value
    return _ENC_PREFIX + _current().encrypt(value.encode()).decode()


def resolve(stored: str | None) -> str | None:
    """Return the usable secret for a stored value (decrypted, or read from the environment).

    Raises SecretError when it cannot be decrypted; an unset environment variable gives None.
    """
    if not stored:
        return None
    if is_reference(stored):
        return os.environ.get(stored[len(ENV_PREFIX) :])
    if stored.startswith(_ENC_PREFIX):
        try:
            return _current().decrypt(stored[len(_ENC_PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretError(
                "a stored credential cannot be decrypted: PROXY_ENCRYPTION_KEY changed?"
            ) from exc
    return stored


@overload
def resolve_value(value: str) -> str | None: ...
@overload
def resolve_value(value: object) -> object: ...
def resolve_value(value: object) -> object:
    """Resolve ``os.environ/NAME`` in a plain config value; other values pass through."""
    if isinstance(value, str) and is_reference(value):
        return os.environ.get(value[len(ENV_PREFIX) :])
    return value


def redact(value: str | None) -> str:
    """A form safe to show or log: references in full, literals as a fixed mask."""
    if not value:
        return ""
    if is_reference(value):
        return value
    return "****"
