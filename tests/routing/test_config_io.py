from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.core.models import ProxyConfig
from apps.core.secrets import resolve
from apps.keys import hashing
from apps.routing.config_export import config_export
from apps.routing.config_io import config_import
from apps.routing.models import Deployment, ModelGroup

CONFIG = {
    "model_list": [
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "sk-literal-upstream-key-123456",
                "rpm": 100,
                "tpm": 50000,
                "timeout": 30,
                "some_future_param": {"x": 1},
            },
            "model_info": {"id": "dep-gpt4o-a", "mode": "chat"},
        },
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "azure/my-gpt4o",
                "api_base": "https://example.openai.azure.com",
                "api_key": "os.environ/AZURE_KEY",
                "api_version": "2024-10-21",
                "weight": 3,
                "region_name": "eu",
            },
        },
        {
            "model_name": "claude",
            "litellm_params": {
                "model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
                "aws_region_name": "us-east-1",
                "aws_secret_access_key": "bedrock-secret-value",
                "input_cost_per_token": 0.000003,
            },
        },
        {"model_name": "groq-llama", "litellm_params": {"model": "groq/llama-3.1-8b-instant"}},
    ],
    "litellm_settings": {"drop_params": True, "totally_new_setting": 1},
    "router_settings": {"routing_strategy": "simple-shuffle"},
    "general_settings": {"master_key": "sk-config-master", "store_model_in_db": True},
    "brand_new_section": {"a": 1},
}


@pytest.mark.django_db
def test_import_creates_groups_deployments_and_settings():
    report = config_import(data=CONFIG)
    assert len(report.created) == 4 and not report.skipped
    assert set(ModelGroup.objects.values_list("name", flat=True)) == {
        "gpt-4o",
        "claude",
        "groq-llama",
    }
    dep = Deployment.objects.get(model_id="dep-gpt4o-a")
    assert (dep.provider, dep.model, dep.rpm, dep.tpm, dep.timeout) == (
        "openai",
        "gpt-4o",
        100,
        50000,
        30.0,
    )
    # The literal key is encrypted at rest, references are kept as they are.
    assert "sk-literal-upstream-key" not in dep.api_key
    assert resolve(dep.api_key) == "sk-literal-upstream-key-123456"
    assert dep.extra_params == {"some_future_param": {"x": 1}}
    azure = Deployment.objects.get(provider="azure")
    assert azure.api_key == "os.environ/AZURE_KEY" and azure.weight == 3
    assert azure.region_name == "eu" and "region_name" not in azure.extra_params
    bedrock = Deployment.objects.get(provider="bedrock")
    assert bedrock.extra_params == {"aws_region_name": "us-east-1"}
    assert "bedrock-secret-value" not in str(bedrock.secret_params)
    assert resolve(bedrock.secret_params["aws_secret_access_key"]) == "bedrock-secret-value"
    assert str(bedrock.input_cost_per_token) == "0.00000300000000"
    config = ProxyConfig.objects.get()
    assert config.master_key_digest == hashing.digest("sk-config-master")
    assert "master_key" not in config.general_settings
    assert config.extra == {"brand_new_section": {"a": 1}}
    assert "litellm_settings.totally_new_setting: not acted on" in report.not_acted_on
    assert "brand_new_section" in report.unknown


@pytest.mark.django_db
def test_import_twice_changes_nothing():
    config_import(data=CONFIG)
    before = list(Deployment.objects.order_by("pk").values())
    report = config_import(data=CONFIG)
    assert not report.changed
    assert len(report.unchanged) == 4
    assert list(Deployment.objects.order_by("pk").values()) == before


@pytest.mark.django_db
def test_changed_file_updates_rows_and_prunes_only_config_deployments():
    config_import(data=CONFIG)
    admin_group = ModelGroup.objects.create(name="admin-made")
    Deployment.objects.create(group=admin_group, provider="mock", model="x")
    changed = yaml.safe_load(yaml.safe_dump(CONFIG))
    changed["model_list"][0]["litellm_params"]["rpm"] = 200
    changed["model_list"][0]["litellm_params"]["api_key"] = "sk-rotated-key-000000"
    del changed["model_list"][3]
    report = config_import(data=changed)
    assert len(report.updated) == 1 and len(report.removed) == 1
    dep = Deployment.objects.get(model_id="dep-gpt4o-a")
    assert dep.rpm == 200 and resolve(dep.api_key) == "sk-rotated-key-000000"
    assert not ModelGroup.objects.filter(name="groq-llama").exists()
    assert Deployment.objects.filter(group__name="admin-made").exists()


@pytest.mark.django_db
def test_bad_entries_are_reported_not_fatal():
    data = {
        "model_list": [
            "not a mapping",
            {"litellm_params": {"model": "openai/x"}},
            {"model_name": "b", "litellm_params": {"model": "openai/x", "rpm": "lots"}},
            {"model_name": "c", "litellm_params": "nope"},
            {"model_name": "ok", "litellm_params": {"model": "mock/echo"}},
        ],
        "litellm_settings": ["not", "a", "mapping"],
    }
    report = config_import(data=data)
    assert len(report.created) == 1
    assert len(report.skipped) == 5


@pytest.mark.django_db
def test_export_round_trip_keeps_references_and_hides_literals(tmp_path: Path):
    config_import(data=CONFIG)
    exported = config_export()
    text = yaml.safe_dump(exported)
    assert "sk-literal-upstream-key" not in text
    assert "bedrock-secret-value" not in text
    assert "sk-config-master" not in text
    assert "os.environ/AZURE_KEY" in text
    # With its secrets, an export imports back without a single change.
    with_secrets = config_export(include_secrets=True)
    assert "sk-literal-upstream-key-123456" in yaml.safe_dump(with_secrets)
    report = config_import(data=with_secrets)
    assert not report.changed, report.updated


@pytest.mark.django_db
def test_commands(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    out = StringIO()
    call_command("import_config", str(path), stdout=out)
    assert "4 created" in out.getvalue()
    out = StringIO()
    call_command("import_config", str(path), stdout=out)
    assert "0 created, 0 updated, 4 unchanged" in out.getvalue()
    target = tmp_path / "out.yaml"
    call_command("export_config", "--output", str(target))
    assert yaml.safe_load(target.read_text())["model_list"][0]["model_name"] == "claude"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: [unclosed")
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("import_config", str(bad))
    bad.write_text("- just\n- a list\n")
    with pytest.raises(CommandError, match="mapping"):
        call_command("import_config", str(bad))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_config", str(tmp_path / "missing.yaml"))


@pytest.mark.django_db
def test_environment_variables_are_applied_not_stored(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("GW_TEST_ENV_VALUE", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "model_list": [],
                "environment_variables": {"GW_TEST_ENV_VALUE": "from-config"},
            }
        )
    )
    call_command("import_config", str(path), stdout=StringIO())
    assert os.environ["GW_TEST_ENV_VALUE"] == "from-config"
    assert "from-config" not in str(ProxyConfig.objects.get().environment_variables)
