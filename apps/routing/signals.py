"""Deployment and group changes reach every process's routing table without a restart."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core import changes
from apps.routing.models import Deployment, ModelGroup


@receiver([post_save, post_delete], sender=Deployment)
@receiver([post_save, post_delete], sender=ModelGroup)
def _routing_changed(sender: type, **kwargs: Any) -> None:
    changes.changed(changes.TOPIC_ROUTING)
