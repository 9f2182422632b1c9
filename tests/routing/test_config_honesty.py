"""import_config and serve --config say by name what they read and do not act on; --strict
refuses such a file; unset os.environ/ references, empty files, unknown providers and model
names read differently are all reported."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.routing.config_io import ConfigError, config_import
from apps.routing.models import Deployment

pytestmark = pytest.mark.django_db

MODEL = {"model_name": "gpt", "litellm_params": {"model": "mock/echo"}}


def _run(tmp_path: Path, data: object, *args: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data) if data is not None else "")
    out = StringIO()
    call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


def test_settings_not_acted_on_are_named(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        {
            "model_list": [MODEL],
            "litellm_settings": {"num_retries": 1, "callbacks": ["langfuse"]},
            "router_settings": {
                "routing_strategy": "least-busy",
                "fallbacks": [{"gpt": ["other"]}],
                "redis_host": "localhost",
                "redis_port": 6379,
            },
            "general_settings": {"database_url": "postgres://x", "alerting": ["slack"]},
        },
    )
    lines = out.splitlines()
    for name in (
        "litellm_settings.callbacks",
        "router_settings.redis_host",
        "router_settings.redis_port",
        "general_settings.database_url",
        "general_settings.alerting",
    ):
        assert any(line.startswith(f"not acted on: {name}") for line in lines), (name, out)
    for acted in ("routing_strategy", "fallbacks", "num_retries"):
        assert not any(acted in line for line in lines if line.startswith("not acted on")), out
    assert "REDIS_URL" in out and "DATABASE_URL" in out


def test_strict_refuses_and_imports_nothing(tmp_path: Path) -> None:
    data = {"model_list": [MODEL], "router_settings": {"redis_host": "localhost"}}
    with pytest.raises(CommandError, match=r"--strict.*router_settings\.redis_host"):
        _run(tmp_path, data, "--strict")
    assert not Deployment.objects.exists()
    _run(tmp_path, {"model_list": [MODEL], "router_settings": {"num_retries": 1}}, "--strict")
    assert Deployment.objects.count() == 1


def test_a_router_value_it_cannot_act_on_is_reported(tmp_path: Path) -> None:
    out = _run(tmp_path, {"model_list": [MODEL], "router_settings": {"routing_strategy": "x"}})
    assert "unknown strategy 'x'" in out


def test_unset_environment_references_are_warned_about(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GW_UNSET_MASTER", raising=False)
    monkeypatch.delenv("GW_UNSET_KEY", raising=False)
    monkeypatch.setenv("GW_SET_KEY", "x")
    model = {
        "model_name": "gpt",
        "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/GW_UNSET_KEY"},
    }
    other = {
        "model_name": "gpt",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/GW_SET_KEY"},
    }
    out = _run(
        tmp_path,
        {
            "model_list": [model, other],
            "general_settings": {"master_key": "os.environ/GW_UNSET_MASTER"},
        },
    )
    assert (
        "model_list[0].litellm_params.api_key: environment variable GW_UNSET_KEY is not set" in out
    )
    assert "GW_SET_KEY" not in out
    assert "GW_UNSET_MASTER is not set: no master key will be accepted" in out


def test_an_empty_file_is_refused_and_deletes_nothing(tmp_path: Path) -> None:
    _run(tmp_path, {"model_list": [MODEL]})
    for empty in (None, {}):
        with pytest.raises(CommandError, match="empty"):
            _run(tmp_path, empty)
    assert Deployment.objects.count() == 1


def test_a_file_without_model_list_keeps_the_deployments(tmp_path: Path) -> None:
    _run(tmp_path, {"model_list": [MODEL]})
    out = _run(tmp_path, {"router_settings": {"num_retries": 1}})
    assert "no model_list" in out
    assert Deployment.objects.count() == 1


def test_an_unknown_provider_fails_and_imports_nothing(tmp_path: Path) -> None:
    data = {
        "model_list": [
            MODEL,
            {"model_name": "x", "litellm_params": {"model": "nosuchprovider/x"}},
        ]
    }
    with pytest.raises(CommandError, match="unknown provider 'nosuchprovider'"):
        _run(tmp_path, data)
    assert not Deployment.objects.exists()
    with pytest.raises(ConfigError):
        config_import(data=data)


def test_a_model_name_read_differently_is_said(tmp_path: Path) -> None:
    out = _run(tmp_path, {"model_list": [{"model_name": "all", "litellm_params": {"model": "*"}}]})
    assert (
        "read differently: model_list[0] (all): model '*' has no provider prefix, "
        "read as 'openai/*'" in out
    )


@pytest.mark.django_db(transaction=True)
def test_import_migrates_a_fresh_database_first(tmp_path: Path) -> None:
    call_command("migrate", "usage", "0001", verbosity=0)
    out = _run(tmp_path, {"model_list": [MODEL]})
    assert "applying database migrations first" in out
    assert Deployment.objects.count() == 1
