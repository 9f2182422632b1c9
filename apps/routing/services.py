"""Writes to the routing table that are not a config import: deployments from the management
API (``/model/new|update|delete``), each audited, and the model of ``serve --model``. Every
process's routing table is invalidated by the model signals, so a model added here is served at
once and a deleted one is gone."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from django.db import transaction

from apps.core import audit
from apps.core.secrets import encrypt
from apps.providers.registry import split_model
from apps.routing.config_io import PRICE_FIELDS, ImportReport, _apply, _deployment_fields
from apps.routing.models import Deployment, ModelGroup


class DeploymentInvalid(ValueError):
    """The request's litellm_params cannot make a deployment; the message says why."""


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    report = ImportReport()
    fields = _deployment_fields(entry, report, "model")
    if fields is None:
        reasons = report.errors + report.skipped
        reason = reasons[0].split(": ", 1)[-1] if reasons else "invalid"
        raise DeploymentInvalid(reason)
    for name, value in fields.items():
        limit = getattr(Deployment._meta.get_field(name), "max_length", None)
        if isinstance(value, str) and limit and len(value) > limit:
            raise DeploymentInvalid(f"{name} is longer than {limit} characters")
    return fields


@transaction.atomic
def model_create(*, entry: dict[str, Any], actor: str) -> Deployment:
    """Add a deployment from ``{"model_name", "litellm_params", "model_info"}``."""
    fields = _fields(entry)
    given = entry.get("model_info")
    info: dict[str, Any] = given if isinstance(given, dict) else {}
    model_id = str(info.get("id") or uuid.uuid4().hex)
    if Deployment.objects.filter(model_id=model_id).exists():
        raise DeploymentInvalid(f"a deployment with id '{model_id}' already exists")
    group, _ = ModelGroup.objects.get_or_create(name=entry["model_name"])
    dep, _ = _apply(None, group, model_id, fields)
    dep.source = Deployment.SOURCE_ADMIN
    dep.save(update_fields=["source", "updated_at"])
    audit.record(
        actor=actor, action="created", obj=dep, object_id=model_id, after=audit.snapshot(dep)
    )
    return dep


def _current_params(dep: Deployment) -> dict[str, Any]:
    """The non-secret litellm_params of ``dep``, as an update request would give them."""
    params: dict[str, Any] = {"model": f"{dep.provider}/{dep.model}", **(dep.extra_params or {})}
    for name in ("api_base", "api_version", "region_name", "headers"):
        if getattr(dep, name):
            params[name] = getattr(dep, name)
    for name in ("rpm", "tpm", "timeout", "stream_timeout", "order", *PRICE_FIELDS):
        if getattr(dep, name) is not None:
            params[name] = getattr(dep, name)
    params["weight"] = dep.weight
    return params


@transaction.atomic
def model_update(*, dep: Deployment, entry: dict[str, Any], actor: str) -> Deployment:
    """Change ``dep``: the given ``litellm_params`` and ``model_info`` are merged over what it
    has (credentials are kept unless given); ``model_name`` moves it to another group."""
    before = audit.snapshot(dep)
    params = dict(entry.get("litellm_params") or {})
    fields = _fields({"litellm_params": {**_current_params(dep), **params}})
    api_key = fields.pop("api_key")
    secrets = fields.pop("secret_params")
    fields.pop("model_info", None)
    for name, value in fields.items():
        setattr(dep, name, value)
    if "api_key" in params:
        dep.api_key = encrypt(api_key)
    if secrets:
        dep.secret_params = {
            **(dep.secret_params or {}),
            **{k: encrypt(v) for k, v in secrets.items()},
        }
    info = entry.get("model_info")
    if isinstance(info, dict):
        dep.model_info = {**(dep.model_info or {}), **{k: v for k, v in info.items() if k != "id"}}
    old_group = dep.group
    if entry.get("model_name") and entry["model_name"] != old_group.name:
        dep.group, _ = ModelGroup.objects.get_or_create(name=entry["model_name"])
    dep.save()
    if dep.group.pk != old_group.pk and not old_group.deployments.exists():
        old_group.delete()
    audit.record(
        actor=actor,
        action="updated",
        obj=dep,
        object_id=dep.model_id,
        before=before,
        after=audit.snapshot(dep),
    )
    return dep


@transaction.atomic
def model_delete(*, dep: Deployment, actor: str) -> None:
    before = audit.snapshot(dep)
    group = dep.group
    dep.delete()
    if not group.deployments.exists():
        group.delete()
    audit.record(
        actor=actor,
        action="deleted",
        object_type="deployment",
        object_id=dep.model_id,
        before=before,
    )


@transaction.atomic
def model_serve(*, model: str, alias: str | None = None, api_base: str = "") -> Deployment:
    """One model served under ``alias`` (``model`` itself when not given), as LiteLLM's
    ``--model``/``--alias`` do: its group is created or updated, with one deployment whose
    credentials come from the provider's usual environment variable. Raises UnknownProvider."""
    provider, upstream = split_model(model)
    name = (alias or model).strip()
    if not name:
        raise ValueError("the model name is empty")
    group, _ = ModelGroup.objects.get_or_create(name=name)
    model_id = "serve-" + hashlib.sha256(name.encode()).hexdigest()[:24]
    deployment, _ = Deployment.objects.update_or_create(
        model_id=model_id,
        defaults={
            "group": group,
            "provider": provider,
            "model": upstream,
            "api_base": api_base,
            "source": Deployment.SOURCE_CONFIG,
            "enabled": True,
        },
    )
    return deployment
