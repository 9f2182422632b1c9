"""The only place raw keys are made, hashed and compared.

Keys are ``sk-`` plus 32 random bytes (url-safe base64). Only an HMAC-SHA256 digest under
``GATEWAY_KEY_PEPPER`` is stored, with a short display form. A lookup by digest needs no
constant-time compare: an attacker who does not know the pepper cannot aim at a digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

KEY_PREFIX = "sk-"


def make_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(raw: str) -> str:
    return hmac.new(settings.GATEWAY_KEY_PEPPER.encode(), raw.encode(), hashlib.sha256).hexdigest()


def display(raw: str) -> str:
    """What admins see in place of the key: enough to recognise it, useless to an attacker."""
    if len(raw) <= 12:
        return raw[:3] + "..."
    return f"{raw[:6]}...{raw[-4:]}"
