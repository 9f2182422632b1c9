"""JSON Schema (as OpenAI tools and ``response_format`` carry it) -> the Schema object Gemini takes.

Gemini's Schema is "a select subset of an OpenAPI 3.0 schema object": keys outside that subset
(``additionalProperties``, ``$schema``, ``strict``, ``$ref``, ``oneOf``...) are rejected with 400,
so they are rewritten where an equivalent exists and dropped otherwise.
https://ai.google.dev/api/caching#Schema
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/Schema
"""

from __future__ import annotations

from typing import Any

from apps.providers.schemas import JSONDict

_KEPT = frozenset(
    {
        "description",
        "title",
        "nullable",
        "default",
        "example",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "pattern",
        "minimum",
        "maximum",
        "propertyOrdering",
    }
)
_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"})
# Formats the Gemini API accepts per type; any other format is dropped (it is only a hint).
_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
_MAX_DEPTH = 24


def to_gemini_schema(schema: Any) -> JSONDict:
    """The Gemini Schema for a JSON Schema; local ``$ref``s are inlined (recursion is cut off)."""
    if not isinstance(schema, dict):
        return {}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return _convert(schema, defs, 0)


def _resolve(ref: Any, defs: dict[str, Any]) -> Any:
    if isinstance(ref, str):
        for prefix in ("#/$defs/", "#/definitions/"):
            if ref.startswith(prefix):
                return defs.get(ref[len(prefix) :])
    return None


def _merge_all_of(schema: JSONDict) -> JSONDict:
    merged: JSONDict = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _convert(schema: Any, defs: dict[str, Any], depth: int) -> JSONDict:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {}
    if "$ref" in schema:
        target = _resolve(schema["$ref"], defs)
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return _convert({**(target or {}), **extra}, defs, depth + 1)
    if isinstance(schema.get("allOf"), list):
        schema = _merge_all_of(schema)
    out: JSONDict = {k: v for k, v in schema.items() if k in _KEPT}
    nullable = False

    variants = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(variants, list):
        subs = [v for v in variants if isinstance(v, dict)]
        if any(v.get("type") == "null" for v in subs):
            nullable = True
            subs = [v for v in subs if v.get("type") != "null"]
        converted = [_convert(v, defs, depth + 1) for v in subs]
        if len(converted) == 1:
            out = {**converted[0], **out}
        elif converted:
            out["anyOf"] = converted

    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [str(k) for k in kind if k != "null"]
        nullable = nullable or len(kinds) < len(kind)
        if len(kinds) == 1:
            kind = kinds[0]
        else:
            out["anyOf"] = [{"type": k.upper()} for k in kinds if k.upper() in _TYPES]
            kind = None
    if isinstance(kind, str):
        if kind == "null":
            nullable = True
        elif kind.upper() in _TYPES:
            out["type"] = kind.upper()

    if "const" in schema:
        out["enum"] = [_enum_value(schema["const"])]
    elif isinstance(schema.get("enum"), list):
        values = [v for v in schema["enum"] if v is not None]
        nullable = nullable or len(values) < len(schema["enum"])
        out["enum"] = [_enum_value(v) for v in values]
    if "enum" in out:
        out.setdefault("type", "STRING")

    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt

    props = schema.get("properties")
    if isinstance(props, dict) and props:
        out["properties"] = {str(k): _convert(v, defs, depth + 1) for k, v in props.items()}
        required = schema.get("required")
        if isinstance(required, list):
            kept = [r for r in required if r in props]
            if kept:
                out["required"] = kept
    items = schema.get("items")
    if isinstance(items, list):
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _convert(items, defs, depth + 1)
    if nullable:
        out["nullable"] = True
    return out


def _enum_value(value: Any) -> str:
    # Gemini enums are strings, whatever the declared type.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def parameters_schema(parameters: Any) -> JSONDict | None:
    """The ``parameters`` of a function declaration, or None when the function takes none
    (Gemini rejects an OBJECT schema with empty ``properties``)."""
    converted = to_gemini_schema(parameters)
    if converted.get("type") == "OBJECT" and not converted.get("properties"):
        return None
    return converted or None
