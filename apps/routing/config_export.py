"""Export of the current model groups, deployments and settings as a LiteLLM-style config."""

from __future__ import annotations

from typing import Any

from apps.core.models import ProxyConfig
from apps.core.secrets import is_reference, resolve
from apps.routing.config_io import PRICE_FIELDS
from apps.routing.models import Deployment


def _export_secret(stored: str, include: bool) -> str | None:
    if not stored:
        return None
    if is_reference(stored):
        return stored
    return resolve(stored) if include else None


def config_export(*, include_secrets: bool = False) -> dict[str, Any]:
    """The current deployments and settings as a config mapping. Literal secrets are left out
    unless ``include_secrets`` (references such as os.environ/NAME are always kept)."""
    model_list = []
    deployments = Deployment.objects.select_related("group").order_by("group__name", "pk")
    for dep in deployments:
        params: dict[str, Any] = {"model": f"{dep.provider}/{dep.model}"}
        for name in ("api_base", "api_version", "region_name"):
            if getattr(dep, name):
                params[name] = getattr(dep, name)
        key = _export_secret(dep.api_key, include_secrets)
        if key:
            params["api_key"] = key
        for name in ("rpm", "tpm", "timeout", "stream_timeout", "order"):
            if getattr(dep, name) is not None:
                params[name] = getattr(dep, name)
        if dep.weight != 1:
            params["weight"] = dep.weight
        for name in PRICE_FIELDS:
            value = getattr(dep, name)
            if value is not None:
                params[name] = float(value)
        if dep.headers:
            params["headers"] = dict(dep.headers)
        params.update(dep.extra_params or {})
        for name, stored in (dep.secret_params or {}).items():
            value = _export_secret(stored, include_secrets)
            if value:
                params[name] = value
        clientside = [
            name
            for name, allowed in (
                ("api_key", dep.group.allow_client_api_key),
                ("api_base", dep.group.allow_client_api_base),
            )
            if allowed
        ]
        if clientside:
            params["configurable_clientside_auth_params"] = clientside
        info = {"id": dep.model_id, **(dep.model_info or {})}
        if not dep.enabled:
            info["enabled"] = False
        model_list.append(
            {"model_name": dep.group.name, "litellm_params": params, "model_info": info}
        )
    out: dict[str, Any] = {"model_list": model_list}
    config = ProxyConfig.objects.filter(pk=1).first()
    if config is not None:
        for section in ("litellm_settings", "router_settings"):
            if getattr(config, section):
                out[section] = dict(getattr(config, section))
        general = dict(config.general_settings or {})
        if config.master_key_ref:
            general["master_key"] = config.master_key_ref
        if general:
            out["general_settings"] = general
        out.update(config.extra or {})
    return out
