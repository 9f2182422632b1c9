from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.routing.config_io import ConfigError, apply_environment, config_import


def load_config_file(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML: {exc}") from None


class Command(BaseCommand):
    help = "Import a LiteLLM-style config.yaml (model_list, *_settings). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--keep-missing",
            action="store_true",
            help="Keep config-imported deployments that are not in this file.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = load_config_file(options["file"])
        try:
            report = config_import(data=data, prune=not options["keep_missing"])
        except ConfigError as exc:
            raise CommandError(f"{options['file']}: {exc}") from None
        apply_environment(data)
        for line in report.lines():
            self.stdout.write(line)
