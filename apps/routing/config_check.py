"""What a config file asks for that the gateway will not do, said by name.

``import_config`` and ``serve --config`` print these findings (``--strict`` refuses the file
when there is any setting not acted on): settings the gateway keeps but does not act on, with
what to do instead where there is something; ``os.environ/NAME`` references to variables that
are not set; model names read differently from how they are written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.core.secrets import ENV_PREFIX
from apps.routing.policy import (
    LITELLM_ROUTER_KEYS,
    ROUTER_KEYS,
    SettingsError,
    router_settings,
)

# Settings the gateway acts on, per section. Everything else in these sections is kept (and
# exported) but reported.
ACTED_ON: dict[str, frozenset[str]] = {
    "litellm_settings": LITELLM_ROUTER_KEYS
    | {"drop_params", "success_callback", "failure_callback"},
    "router_settings": ROUTER_KEYS | {"enable_pre_call_checks"},
    "general_settings": frozenset({"master_key"}),
}

# What to do instead, for settings people often carry over from LiteLLM.
INSTEAD = {
    "router_settings.redis_host": "set REDIS_URL in the environment",
    "router_settings.redis_port": "set REDIS_URL in the environment",
    "router_settings.redis_password": "set REDIS_URL in the environment",
    "router_settings.redis_url": "set REDIS_URL in the environment",
    "litellm_settings.cache": "response caching is not implemented",
    "litellm_settings.cache_params": "response caching is not implemented",
    "general_settings.database_url": "set DATABASE_URL in the environment",
    "general_settings.alerting": "alerting is not implemented",
    "litellm_settings.callbacks": "use success_callback / failure_callback webhooks",
    "litellm_settings.set_verbose": "set the log level with serve --log-level",
    "litellm_settings.json_logs": "logs are plain text",
    "general_settings.store_model_in_db": "deployments are always stored in the database",
}
# Settings acted on only for some values: (section.key, value acted on, what happens instead).
_ONLY_WHEN = {
    "router_settings.enable_pre_call_checks": (
        True,
        "the context-window pre-check always runs where context sizes are known",
    ),
}
_ENTRY_KEYS = frozenset({"model_name", "litellm_params", "model_info"})


@dataclass
class Findings:
    not_acted_on: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if value.startswith(ENV_PREFIX):
            yield path, value[len(ENV_PREFIX) :]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{path}[{index}]")


def _settings(data: Mapping[str, Any], findings: Findings) -> None:
    for section, acted in ACTED_ON.items():
        values = data.get(section)
        if not isinstance(values, Mapping):
            continue
        for key, value in values.items():
            name = f"{section}.{key}"
            if key in acted:
                only = _ONLY_WHEN.get(name)
                if only is not None and value != only[0]:
                    findings.not_acted_on.append(f"{name}: {value!r} not acted on: {only[1]}")
                continue
            instead = INSTEAD.get(name)
            findings.not_acted_on.append(
                f"{name}: not acted on ({instead})" if instead else f"{name}: not acted on"
            )
    litellm = data.get("litellm_settings")
    router = data.get("router_settings")
    try:
        router_settings(
            litellm if isinstance(litellm, Mapping) else {},
            router if isinstance(router, Mapping) else {},
        )
    except SettingsError as exc:
        findings.not_acted_on.append(f"{exc} (the router ignores these settings)")


def _models(data: Mapping[str, Any], findings: Findings) -> None:
    entries = data.get("model_list")
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        label = f"model_list[{index}]"
        params = entry.get("litellm_params")
        model = params.get("model") if isinstance(params, Mapping) else None
        if isinstance(model, str) and model and "/" not in model:
            findings.rewritten.append(
                f"{label} ({entry.get('model_name')}): model '{model}' has no provider prefix, "
                f"read as 'openai/{model}'"
            )
        settings = entry.get("model_info")
        if isinstance(settings, Mapping) and "id" in settings and not settings["id"]:
            findings.warnings.append(f"{label}: model_info.id is empty; a stable id is used")


def _environment(data: Mapping[str, Any], findings: Findings) -> None:
    provided = data.get("environment_variables")
    given = set(provided) if isinstance(provided, Mapping) else set()
    for path, name in _references(data, ""):
        if path.startswith("environment_variables") or name in os.environ or name in given:
            continue
        if path == "general_settings.master_key":
            findings.warnings.append(
                f"{path}: environment variable {name} is not set: no master key will be "
                "accepted, so only virtual keys can call the gateway"
            )
        else:
            findings.warnings.append(f"{path}: environment variable {name} is not set")


def check(data: Mapping[str, Any]) -> Findings:
    """Everything in ``data`` the gateway will not do as written."""
    findings = Findings()
    _settings(data, findings)
    _models(data, findings)
    _environment(data, findings)
    return findings
