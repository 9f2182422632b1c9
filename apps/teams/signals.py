"""Team changes alter what cached keys may do: tell every process."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core import changes
from apps.teams.models import Organization, Team


@receiver([post_save, post_delete], sender=Team)
@receiver([post_save, post_delete], sender=Organization)
def _team_changed(sender: type, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields and set(update_fields) <= {"spend", "updated_at"}:
        return
    changes.changed(changes.TOPIC_KEYS)
