"""Import and export of LiteLLM-style ``config.yaml`` files.

Import is idempotent: deployments from a file are matched by ``model_info.id`` or, without
one, by a stable id derived from the group, the provider model and the api_base; a changed
file updates rows, and config-born deployments missing from the file are removed (those
created in the admin are never touched). Settings the gateway does not act on are kept and
reported by name (``config_check``), fatal only with ``strict``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from apps.core.models import ProxyConfig
from apps.core.secrets import ENV_PREFIX, encrypt, is_reference, resolve
from apps.keys import hashing
from apps.providers.registry import UnknownProvider, split_model
from apps.routing import config_check
from apps.routing.models import Deployment, ModelGroup

TOP_LEVEL = {
    "model_list",
    "litellm_settings",
    "router_settings",
    "general_settings",
    "environment_variables",
    "include",
}
# litellm_params handled as columns; everything else goes to extra_params / secret_params.
COLUMN_PARAMS = {
    "model",
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "rpm",
    "tpm",
    "timeout",
    "stream_timeout",
    "weight",
    "order",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "headers",
    "extra_headers",
    "configurable_clientside_auth_params",
    "region_name",
}
SECRET_PARAMS = {
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_bearer_token",
    "vertex_credentials",
    "client_secret",
    "azure_ad_token",
    "azure_password",
    "aws_web_identity_token",
}
PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost")


class ConfigError(Exception):
    """The file cannot be imported at all (not YAML, not a mapping)."""


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    not_acted_on: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    # Entries that make the file unusable (an unknown provider): nothing is imported.
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def lines(self) -> list[str]:
        out = [
            f"deployments: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed"
        ]
        out += [f"skipped: {s}" for s in self.skipped]
        out += [f"kept, not used by the gateway: {u}" for u in self.unknown]
        out += [f"not acted on: {n}" for n in self.not_acted_on]
        out += [f"read differently: {r}" for r in self.rewritten]
        out += [f"warning: {w}" for w in self.warnings]
        return out

    @property
    def ignored(self) -> list[str]:
        """Everything the file asks for that the gateway does not act on (``--strict``)."""
        return self.not_acted_on + self.unknown


def _stable_id(group: str, model: str, api_base: str, seen: dict[str, int]) -> str:
    basis = f"{group}\x00{model}\x00{api_base}"
    n = seen.get(basis, 0)
    seen[basis] = n + 1
    return "cfg-" + hashlib.sha256(f"{basis}\x00{n}".encode()).hexdigest()[:20]


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not an integer: {value!r}")
    return int(float(value))


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _secret_equal(stored: str, new: str) -> bool:
    if stored == new or not (stored or new):
        return True
    if is_reference(new) or is_reference(stored):
        return stored == new
    try:
        return resolve(stored) == new
    except Exception:
        return False


def _secrets_equal(stored: dict[str, Any], new: dict[str, str]) -> bool:
    if set(stored) != set(new):
        return False
    return all(isinstance(stored[k], str) and _secret_equal(stored[k], v) for k, v in new.items())


def _client_auth(
    group: ModelGroup, params: dict[str, Any], report: ImportReport, label: str
) -> None:
    """LiteLLM's ``configurable_clientside_auth_params: [api_key, api_base]`` lets the
    group's clients send those with a request (the gateway keeps the setting per group)."""
    value = params.get("configurable_clientside_auth_params")
    if value is None:
        return
    name = f"{label}.litellm_params.configurable_clientside_auth_params"
    if not isinstance(value, list):
        report.unknown.append(f"{name}: must be a list")
        return
    changed = []
    for item in value:
        if item == "api_key" and not group.allow_client_api_key:
            group.allow_client_api_key = True
            changed.append("allow_client_api_key")
        elif item == "api_base" and not group.allow_client_api_base:
            group.allow_client_api_base = True
            changed.append("allow_client_api_base")
        elif item not in ("api_key", "api_base"):
            # LiteLLM's regex form ({"api_base": "^https://..."}) has no equivalent: the
            # gateway checks hosts (client_api_base_hosts on the model group).
            report.unknown.append(f"{name}: {item!r}")
    if changed:
        group.save(update_fields=changed)


def _deployment_fields(
    entry: dict[str, Any], report: ImportReport, label: str
) -> dict[str, Any] | None:
    params = entry.get("litellm_params")
    if not isinstance(params, dict):
        report.skipped.append(f"{label}: 'litellm_params' must be a mapping")
        return None
    model = params.get("model")
    if not isinstance(model, str) or not model:
        report.skipped.append(f"{label}: litellm_params.model is missing")
        return None
    try:
        provider, upstream = split_model(model)
    except UnknownProvider as exc:
        report.errors.append(f"{label}: unknown provider '{exc.args[0]}' in '{model}'")
        return None
    raw_info = entry.get("model_info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    try:
        fields: dict[str, Any] = {
            "provider": provider,
            "model": upstream,
            "api_base": str(params.get("api_base") or params.get("base_url") or ""),
            "api_key": str(params.get("api_key") or ""),
            "api_version": str(params.get("api_version") or ""),
            "rpm": _int(params.get("rpm", info.get("rpm"))),
            "tpm": _int(params.get("tpm", info.get("tpm"))),
            "timeout": _float(params.get("timeout")),
            "stream_timeout": _float(params.get("stream_timeout")),
            "weight": _int(params.get("weight")) or 1,
            "order": _int(params.get("order")),
            "region_name": str(params.get("region_name") or ""),
        }
        for name in PRICE_FIELDS:
            fields[name] = _decimal(params.get(name, info.get(name)))
    except (ValueError, TypeError) as exc:
        report.skipped.append(f"{label}: {exc}")
        return None
    headers = params.get("headers") or params.get("extra_headers") or {}
    fields["headers"] = (
        {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}
    )
    fields["extra_params"] = {
        k: v for k, v in params.items() if k not in COLUMN_PARAMS and k not in SECRET_PARAMS
    }
    # Structured secrets (a service-account JSON object) are kept as JSON text, encrypted.
    fields["secret_params"] = {
        k: v if isinstance(v, str) else json.dumps(v)
        for k, v in params.items()
        if k in SECRET_PARAMS and v is not None
    }
    fields["model_info"] = {k: v for k, v in info.items() if k != "id"}
    return fields


def _apply(
    dep: Deployment | None, group: ModelGroup, model_id: str, fields: dict[str, Any]
) -> tuple[Deployment, str]:
    """Create or update one deployment. Returns it and 'created' / 'updated' / 'unchanged'."""
    api_key = fields.pop("api_key")
    secrets = fields.pop("secret_params")
    if dep is None:
        dep = Deployment(model_id=model_id, group=group, source=Deployment.SOURCE_CONFIG)
        for name, value in fields.items():
            setattr(dep, name, value)
        dep.api_key = encrypt(api_key)
        dep.secret_params = {k: encrypt(v) for k, v in secrets.items()}
        dep.save()
        return dep, "created"
    changed = []
    if dep.group_id != group.pk:
        dep.group = group
        changed.append("group")
    for name, value in fields.items():
        if getattr(dep, name) != value:
            setattr(dep, name, value)
            changed.append(name)
    if not _secret_equal(dep.api_key, api_key):
        dep.api_key = encrypt(api_key)
        changed.append("api_key")
    if not _secrets_equal(dep.secret_params or {}, secrets):
        dep.secret_params = {k: encrypt(v) for k, v in secrets.items()}
        changed.append("secret_params")
    if not dep.enabled:
        dep.enabled = True
        changed.append("enabled")
    if changed:
        dep.save(update_fields=[*changed, "updated_at"])
        return dep, "updated: " + ", ".join(changed)
    return dep, "unchanged"


def _store_settings(data: dict[str, Any], report: ImportReport) -> None:
    config, _ = ProxyConfig.objects.get_or_create(pk=1)
    sections: dict[str, dict[str, Any]] = {}
    for section in ("litellm_settings", "router_settings", "general_settings"):
        value = data.get(section) or {}
        if not isinstance(value, dict):
            report.skipped.append(f"{section}: must be a mapping")
            value = {}
        sections[section] = dict(value)
    general = sections["general_settings"]
    master = general.pop("master_key", None)
    master_digest, master_ref = "", ""
    if isinstance(master, str) and master:
        if is_reference(master):
            master_ref = master
        else:
            master_digest = hashing.digest(master)
    general.pop("database_url", None)  # a secret; DATABASE_URL is read from the environment
    env = data.get("environment_variables") or {}
    env_names = sorted(env) if isinstance(env, dict) else []
    extra = {k: v for k, v in data.items() if k not in TOP_LEVEL}
    report.unknown.extend(sorted(extra))
    new = {
        "litellm_settings": sections["litellm_settings"],
        "router_settings": sections["router_settings"],
        "general_settings": general,
        "environment_variables": dict.fromkeys(env_names, "(set from the config file)"),
        "extra": extra,
        "master_key_digest": master_digest,
        "master_key_ref": master_ref,
    }
    if any(getattr(config, k) != v for k, v in new.items()):
        for k, v in new.items():
            setattr(config, k, v)
        config.save()


def apply_environment(data: dict[str, Any]) -> None:
    """Set ``environment_variables`` of a config in this process (values are not stored)."""
    env = data.get("environment_variables")
    if isinstance(env, dict):
        for name, value in env.items():
            if value is not None and not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
                os.environ[str(name)] = str(value)


@transaction.atomic
def config_import(*, data: Any, prune: bool = True, strict: bool = False) -> ImportReport:
    """Bring groups, deployments and proxy settings in line with a parsed config.

    Raises ConfigError (and changes nothing) for an empty file, an unknown provider, or with
    ``strict`` a setting the gateway does not act on.
    """
    if data is None or data == {}:
        raise ConfigError(
            "the file is empty: nothing imported (importing it would remove every deployment "
            "imported before)"
        )
    if not isinstance(data, dict):
        raise ConfigError("the config must be a YAML mapping at the top level")
    report = ImportReport()
    findings = config_check.check(data)
    report.not_acted_on = findings.not_acted_on
    report.warnings = findings.warnings
    report.rewritten = findings.rewritten
    if "model_list" not in data and prune:
        prune = False
        report.warnings.append("no model_list: the deployments are left as they are")
    entries = data.get("model_list") or []
    if not isinstance(entries, list):
        raise ConfigError("'model_list' must be a list")
    seen_ids: set[str] = set()
    stable_seen: dict[str, int] = {}
    groups: dict[str, ModelGroup] = {}
    for index, entry in enumerate(entries):
        label = f"model_list[{index}]"
        if not isinstance(entry, dict):
            report.skipped.append(f"{label}: must be a mapping")
            continue
        name = entry.get("model_name")
        if not isinstance(name, str) or not name.strip():
            report.skipped.append(f"{label}: model_name is missing")
            continue
        label = f"{label} ({name})"
        fields = _deployment_fields(entry, report, label)
        if fields is None:
            continue
        for key in entry:
            if key not in ("model_name", "litellm_params", "model_info"):
                report.unknown.append(f"{label}.{key}")
        raw_info = entry.get("model_info")
        info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
        model_id = str(
            info.get("id")
            or _stable_id(
                name, f"{fields['provider']}/{fields['model']}", fields["api_base"], stable_seen
            )
        )
        if model_id in seen_ids:
            report.skipped.append(f"{label}: duplicate model_info.id '{model_id}'")
            continue
        seen_ids.add(model_id)
        group = groups.get(name)
        if group is None:
            group, _ = ModelGroup.objects.get_or_create(name=name)
            groups[name] = group
        _client_auth(group, entry["litellm_params"], report, label)
        existing = Deployment.objects.filter(model_id=model_id).first()
        dep, outcome = _apply(existing, group, model_id, fields)
        kind, _, what = outcome.partition(": ")
        line = f"{name} -> {dep.provider}/{dep.model} ({model_id})"
        getattr(report, kind).append(f"{line}: {what}" if what else line)
    if prune:
        stale = Deployment.objects.filter(source=Deployment.SOURCE_CONFIG).exclude(
            model_id__in=seen_ids
        )
        for dep in stale.select_related("group"):
            report.removed.append(f"{dep.group.name} -> {dep.provider}/{dep.model}")
        stale.delete()
        ModelGroup.objects.filter(deployments__isnull=True).exclude(name__in=groups).delete()
    _store_settings(data, report)
    if report.errors:
        raise ConfigError("nothing imported: " + "; ".join(report.errors))
    if strict and report.ignored:
        raise ConfigError(
            "nothing imported (--strict): the gateway does not act on " + "; ".join(report.ignored)
        )
    return report
