"""What the upstream client raises. Messages name the host at most, never the path or query
(which may carry a key)."""

from __future__ import annotations


class H1Error(Exception):
    """A transport failure talking to ``host``."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


class ConnectFailed(H1Error):
    pass


class Disconnected(H1Error):
    pass


class MalformedResponse(H1Error):
    pass


class InvalidRequest(ValueError):
    pass
