"""Every secret the tests create, and the check that none reaches a client or a log line.

Secrets are registered where they are made (``secret(...)`` around a constant, or on the value
a fake issues or a fixture creates); the ``leak_guard`` fixture, used by every end-to-end test
through ``gateway_server``, records what the gateway sends and logs and calls ``check``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

_SECRETS: set[str] = set()

# Loggers of the clients the tests drive (which hold the client's own key), not the gateway's.
_CLIENT_LOGGERS = ("openai", "anthropic", "httpx", "httpcore", "urllib3")


def secret(value: str) -> str:
    """``value``, registered as a secret the gateway must never send or log."""
    if len(value) >= 7:  # shorter values would match unrelated text
        _SECRETS.add(value)
    return value


def pem_secret(pem: str) -> str:
    """A PEM private key, registered by its key lines (each survives JSON escaping as is)."""
    for line in pem.splitlines():
        if line and not line.startswith("-----"):
            secret(line)
    return pem


def _gateway_lines(records: Iterable[logging.LogRecord]) -> str:
    lines = []
    for record in records:
        if record.name.split(".", 1)[0] in _CLIENT_LOGGERS:
            continue
        lines.append(record.getMessage())
        if record.exc_text:
            lines.append(record.exc_text)
    return "\n".join(lines)


def check(sent: Iterable[bytes], records: Iterable[logging.LogRecord]) -> None:
    """Fail naming the first secret found in ``sent`` (response bytes) or the gateway's log."""
    chunks = list(sent)
    logged = _gateway_lines(records)
    for value in sorted(_SECRETS):
        raw = value.encode()
        leaked = [chunk[:200] for chunk in chunks if raw in chunk]
        assert not leaked, f"secret {value[:6]}... sent to a client: {leaked}"
        assert value not in logged, f"secret {value[:6]}... written to the logs"


def check_output(text: str) -> None:
    """Fail if a secret appears in a gateway process's output (its log lines)."""
    for value in sorted(_SECRETS):
        assert value not in text, f"secret {value[:6]}... written to the gateway's output"
