from __future__ import annotations

from typing import Any, TypeAlias

JSONValue: TypeAlias = Any
JSONDict: TypeAlias = dict[str, Any]
