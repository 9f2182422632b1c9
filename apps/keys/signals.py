"""Key changes must reach the in-memory auth cache of every process."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core import changes
from apps.core.models import ProxyConfig
from apps.keys.models import VirtualKey
from apps.teams.signals import SPEND_FIELDS


@receiver([post_save, post_delete], sender=VirtualKey)
def _key_changed(sender: type, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields and set(update_fields) <= SPEND_FIELDS:
        return
    changes.changed(changes.TOPIC_KEYS)


@receiver([post_save, post_delete], sender=ProxyConfig)
def _config_changed(sender: type, **kwargs: Any) -> None:
    changes.changed(changes.TOPIC_KEYS)
    changes.changed(changes.TOPIC_CONFIG)
