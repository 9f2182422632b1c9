"""TLS settings of upstream calls: the system trust store by default (OpenSSL honours
``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), and per deployment, as LiteLLM's ``litellm_params``:
``ssl_verify`` (``false`` to skip verification, or the path of a CA bundle for a private
endpoint) and ``ssl_certificate`` (the path of a PEM client certificate with its key)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from apps.core.errors import UpstreamTLSError

_default: ssl.SSLContext | None = None
_custom: dict[tuple[object, object], ssl.SSLContext | bool] = {}


def default_context() -> ssl.SSLContext:
    global _default
    if _default is None:
        _default = ssl.create_default_context()
    return _default


def reset() -> None:
    """Forget every context (the environment's trust store or a CA file changed)."""
    global _default
    _default = None
    _custom.clear()


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def for_params(params: Mapping[str, Any]) -> ssl.SSLContext | bool | None:
    """The TLS setting of one deployment: None for the default context, False for no
    verification, or a context of its own. Raises UpstreamTLSError when a file cannot be
    loaded (the message names the setting, not the file's content)."""
    verify = params.get("ssl_verify")
    cert = params.get("ssl_certificate")
    if verify is None and not cert:
        return None
    key = (verify, cert)
    found = _custom.get(key)
    if found is not None:
        return found
    flag = _flag(verify)
    context: ssl.SSLContext | bool
    try:
        if flag is False and not cert:
            context = False
        else:
            if isinstance(verify, str) and flag is None and verify:
                context = ssl.create_default_context(cafile=verify)
            else:
                context = ssl.create_default_context()
            if flag is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if cert:
                context.load_cert_chain(str(cert))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise UpstreamTLSError(
            f"the deployment's ssl_verify / ssl_certificate could not be loaded "
            f"({type(exc).__name__})."
        ) from None
    if len(_custom) > 256:
        _custom.clear()
    _custom[key] = context
    return context
