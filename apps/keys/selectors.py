"""Reads of virtual keys for the management API and the admin (never the request path)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.keys import hashing
from apps.keys.models import VirtualKey


def key_queryset() -> QuerySet[VirtualKey]:
    return VirtualKey.objects.select_related("team", "team__organization", "user", "budget")


def key_for_raw(raw: str) -> VirtualKey | None:
    """The key whose secret is ``raw``; the previous secret of a regenerated key counts until
    its grace period ends."""
    digest = hashing.digest(raw)
    now = timezone.now()
    return (
        key_queryset()
        .filter(Q(digest=digest) | Q(previous_digest=digest, previous_digest_expires_at__gt=now))
        .first()
    )


def key_for_ref(ref: str) -> VirtualKey | None:
    """A key named the LiteLLM way: its raw ``sk-...`` secret or its ``token`` (the digest)."""
    if not ref:
        return None
    if ref.startswith(hashing.KEY_PREFIX):
        return key_for_raw(ref)
    return key_queryset().filter(digest=ref).first()
