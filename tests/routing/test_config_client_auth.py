"""LiteLLM's ``configurable_clientside_auth_params`` in a config: the group's opt-in to
client-supplied provider credentials, imported and exported."""

from __future__ import annotations

import pytest

from apps.routing.config_export import config_export
from apps.routing.config_io import config_import
from apps.routing.models import Deployment, ModelGroup

pytestmark = pytest.mark.django_db


def _config(params: object) -> dict[str, object]:
    return {
        "model_list": [
            {
                "model_name": "byok",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "configurable_clientside_auth_params": params,
                },
            },
            {"model_name": "plain", "litellm_params": {"model": "openai/gpt-4o-mini"}},
        ]
    }


def test_import_sets_the_group_and_export_writes_it_back() -> None:
    report = config_import(data=_config(["api_key", "api_base"]))
    byok = ModelGroup.objects.get(name="byok")
    assert byok.allow_client_api_key and byok.allow_client_api_base
    plain = ModelGroup.objects.get(name="plain")
    assert not plain.allow_client_api_key and not plain.allow_client_api_base
    dep = Deployment.objects.get(group=byok)
    assert "configurable_clientside_auth_params" not in dep.extra_params
    assert not report.unknown
    exported = {e["model_name"]: e["litellm_params"] for e in config_export()["model_list"]}
    assert exported["byok"]["configurable_clientside_auth_params"] == ["api_key", "api_base"]
    assert "configurable_clientside_auth_params" not in exported["plain"]


def test_unsupported_forms_are_reported() -> None:
    report = config_import(data=_config(["api_key", {"api_base": "^https://x$"}]))
    assert ModelGroup.objects.get(name="byok").allow_client_api_key
    assert not ModelGroup.objects.get(name="byok").allow_client_api_base
    assert any("configurable_clientside_auth_params" in line for line in report.unknown)
    report = config_import(data=_config("api_key"))
    assert any("must be a list" in line for line in report.unknown)
