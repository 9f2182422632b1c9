from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.routing.config_io import ConfigError, apply_environment, config_import


def load_config_file(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML: {exc}") from None


def migrate_if_needed(stdout: OutputWrapper) -> None:
    """Apply pending migrations first (a fresh database has no tables to import into)."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        stdout.write("applying database migrations first")
        call_command("migrate", interactive=False, verbosity=0)


def import_file(
    path: str, *, stdout: OutputWrapper, prune: bool = True, strict: bool = False
) -> None:
    """Import ``path`` and print what was done and everything not acted on, by name."""
    data = load_config_file(path)
    try:
        report = config_import(data=data, prune=prune, strict=strict)
    except ConfigError as exc:
        raise CommandError(f"{path}: {exc}") from None
    apply_environment(data)
    for line in report.lines():
        stdout.write(line)


class Command(BaseCommand):
    help = "Import a LiteLLM-style config.yaml (model_list, *_settings). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--keep-missing",
            action="store_true",
            help="Keep config-imported deployments that are not in this file.",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Refuse the file when it has a setting the gateway does not act on.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        migrate_if_needed(self.stdout)
        import_file(
            options["file"],
            stdout=self.stdout,
            prune=not options["keep_missing"],
            strict=options["strict"],
        )
