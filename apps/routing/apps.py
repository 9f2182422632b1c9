from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "apps.routing"
    label = "routing"
    verbose_name = "Models and deployments"

    def ready(self) -> None:
        from apps.routing import signals  # noqa: F401
