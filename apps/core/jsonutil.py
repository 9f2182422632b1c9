"""Fast JSON through orjson, used everywhere on the request path."""

from __future__ import annotations

from typing import Any

import orjson

dumps = orjson.dumps
loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def dumps_str(value: Any) -> str:
    return orjson.dumps(value).decode()
