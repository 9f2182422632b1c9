from __future__ import annotations

import sys
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandParser

from apps.routing.config_export import config_export


class Command(BaseCommand):
    help = "Write the current model groups, deployments and settings as a config.yaml."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument(
            "--include-secrets",
            action="store_true",
            help="Also write literal credentials in clear (references are always written).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = config_export(include_secrets=options["include_secrets"])
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if options["output"]:
            with open(options["output"], "w") as fh:
                fh.write(text)
            sys.stderr.write(
                f"wrote {len(data['model_list'])} deployments to {options['output']}\n"
            )
        else:
            self.stdout.write(text, ending="")
