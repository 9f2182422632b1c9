"""Writes to the routing table that are not a config import."""

from __future__ import annotations

import hashlib

from django.db import transaction

from apps.providers.registry import split_model
from apps.routing.models import Deployment, ModelGroup


@transaction.atomic
def model_serve(*, model: str, alias: str | None = None, api_base: str = "") -> Deployment:
    """One model served under ``alias`` (``model`` itself when not given), as LiteLLM's
    ``--model``/``--alias`` do: its group is created or updated, with one deployment whose
    credentials come from the provider's usual environment variable. Raises UnknownProvider."""
    provider, upstream = split_model(model)
    name = (alias or model).strip()
    if not name:
        raise ValueError("the model name is empty")
    group, _ = ModelGroup.objects.get_or_create(name=name)
    model_id = "serve-" + hashlib.sha256(name.encode()).hexdigest()[:24]
    deployment, _ = Deployment.objects.update_or_create(
        model_id=model_id,
        defaults={
            "group": group,
            "provider": provider,
            "model": upstream,
            "api_base": api_base,
            "source": Deployment.SOURCE_CONFIG,
            "enabled": True,
        },
    )
    return deployment
