"""The leak guard itself: it must fail when a registered secret is sent or logged."""

from __future__ import annotations

import logging

import pytest

from tests import leaks

SECRET = leaks.secret("guard-self-test-secret-0042")


def _record(logger: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)


def test_a_secret_in_response_bytes_fails():
    with pytest.raises(AssertionError, match="sent to a client"):
        leaks.check([b"ok", b'{"key": "' + SECRET.encode() + b'"}'], [])


def test_a_secret_in_a_gateway_log_line_fails():
    with pytest.raises(AssertionError, match="written to the logs"):
        leaks.check([], [_record("apps.gateway.endpoints", f"calling with {SECRET}")])


def test_a_client_librarys_own_log_is_not_the_gateways():
    leaks.check([], [_record("openai._base_client", f"sending {SECRET}")])


def test_a_pem_key_is_caught_by_its_key_lines_even_json_escaped():
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    )
    leaks.pem_secret(pem)
    escaped = pem.replace("\n", "\\n").encode()
    with pytest.raises(AssertionError):
        leaks.check([escaped], [])


def test_process_output_is_checked():
    with pytest.raises(AssertionError):
        leaks.check_output(f"INFO request with {SECRET}")
