"""Regenerating a key: the old secret stops at once, or after a grace period when one is given."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.core.db import db_task
from apps.core.errors import AuthenticationError
from apps.keys import auth
from apps.keys.auth import authenticate
from apps.keys.models import VirtualKey
from apps.keys.services import key_issue, key_regenerate

pytestmark = pytest.mark.usefixtures("thread_db")


async def test_without_grace_the_old_secret_stops_at_once() -> None:
    key, old = await db_task(key_issue)(key_alias="k")
    await authenticate(old)
    _, new = await db_task(key_regenerate)(key=key)
    auth.clear_cache()
    with pytest.raises(AuthenticationError):
        await authenticate(old)
    assert (await authenticate(new)).key_id == key.pk


async def test_with_grace_the_old_secret_works_until_it_ends() -> None:
    key, old = await db_task(key_issue)(key_alias="k")
    key, new = await db_task(key_regenerate)(key=key, grace_period="1h")
    auth.clear_cache()
    principal = await authenticate(old)
    assert principal.key_id == key.pk
    assert principal.expires_at == key.previous_digest_expires_at
    assert (await authenticate(new)).expires_at is None
    # Once the grace period is over, the old secret is refused even from the cache.
    ended = timezone.now() - dt.timedelta(seconds=1)
    await db_task(VirtualKey.objects.filter(pk=key.pk).update)(previous_digest_expires_at=ended)
    auth.clear_cache()
    with pytest.raises(AuthenticationError):
        await authenticate(old)
    assert (await authenticate(new)).key_id == key.pk


async def test_the_grace_period_never_outlives_the_key() -> None:
    soon = timezone.now() + dt.timedelta(minutes=5)
    key, old = await db_task(key_issue)(key_alias="k", expires_at=soon)
    await db_task(key_regenerate)(key=key, grace_period="1d")
    auth.clear_cache()
    assert (await authenticate(old)).expires_at == soon
