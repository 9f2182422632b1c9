"""The audit log: every management change, from the API or the admin, with secrets removed."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models

from apps.core.models import AuditLog

JSONDict = dict[str, Any]

# Field names whose values never reach the log (nor anything built from it).
SECRET_FIELDS = frozenset(
    {
        "digest",
        "previous_digest",
        "api_key",
        "secret_params",
        "key",
        "token",
        "password",
        "master_key",
        "master_key_digest",
    }
)
REDACTED = "[redacted]"


def _plain(value: Any) -> Any:
    """A JSON-safe copy of ``value``, with secret fields of nested mappings redacted."""
    if isinstance(value, dict):
        return {
            str(k): REDACTED if str(k).lower() in SECRET_FIELDS else _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return str(value.pk)
    return value


def snapshot(obj: models.Model) -> JSONDict:
    """The concrete fields of ``obj`` (foreign keys as ids), secrets redacted."""
    data: JSONDict = {}
    for field in obj._meta.concrete_fields:
        name = field.attname
        data[name] = REDACTED if field.name in SECRET_FIELDS else _plain(getattr(obj, name))
    return data


def scrub(data: JSONDict | None) -> JSONDict | None:
    return None if data is None else _plain(data)


def record(
    *,
    actor: str,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: JSONDict | None = None,
    after: JSONDict | None = None,
    source: str = "api",
) -> AuditLog:
    """Write one entry. ``object_type`` / ``object_id`` default to ``obj``'s model and pk."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name or ""
        object_id = object_id or str(obj.pk)
    return AuditLog.objects.create(
        actor=actor[:200],
        source=source,
        action=action,
        object_type=object_type,
        object_id=object_id[:200],
        before=scrub(before),
        after=scrub(after),
    )
