"""Cache invalidation across processes: change markers polled from the database, and Redis
pub/sub when REDIS_URL is set."""

from __future__ import annotations

import asyncio

import pytest
import redis
from django.test import override_settings

from apps.core import changes
from apps.core.models import ChangeMarker

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def fired(monkeypatch):
    seen: list[str] = []
    listeners = {topic: [lambda t=topic: seen.append(t)] for topic in ("test-a", "test-b")}
    monkeypatch.setattr(changes, "_listeners", listeners)
    monkeypatch.setattr(changes, "_seen", {})
    return seen


@pytest.mark.django_db(transaction=True)
def test_poll_fires_listeners_of_topics_changed_elsewhere(fired):
    ChangeMarker.objects.create(topic="test-b", revision=5)
    assert changes.poll_once() == []  # first look: remember, fire nothing
    ChangeMarker.objects.filter(topic="test-b").update(revision=6)
    assert changes.poll_once() == ["test-b"]
    assert fired == ["test-b"]
    assert changes.poll_once() == []


@pytest.mark.django_db(transaction=True)
def test_first_change_made_by_another_process_is_seen(fired):
    """Markers exist only once a topic has changed. The first change of a topic, made in
    another process, creates its marker; it used to be only remembered, so this process kept
    a blocked key or a stale routing table until the cache TTL ran out."""
    assert changes.poll_once() == []  # no marker yet
    ChangeMarker.objects.create(topic="test-a", revision=1)  # another process's first change
    assert changes.poll_once() == ["test-a"]
    ChangeMarker.objects.filter(topic="test-a").update(revision=2)
    assert changes.poll_once() == ["test-a"]
    assert fired == ["test-a", "test-a"]
    assert changes.poll_once() == []


@pytest.mark.django_db(transaction=True)
def test_changed_bumps_the_marker_and_fires_locally(fired):
    changes.changed("test-b")
    changes.changed("test-b")
    assert ChangeMarker.objects.get(topic="test-b").revision == 2
    assert fired == ["test-b", "test-b"]


@pytest.mark.django_db(transaction=True)
def test_redis_messages_reach_listeners(fired):
    async def scenario() -> None:
        with override_settings(REDIS_URL=REDIS_URL, GATEWAY_CHANGE_POLL_S=60):
            watcher = changes.ChangeWatcher()
            watcher.start()
            try:
                client = redis.Redis.from_url(REDIS_URL)
                for _ in range(100):  # wait until the subscription is live
                    if client.pubsub_numsub(changes.channel())[0][1]:
                        break
                    await asyncio.sleep(0.02)
                client.publish(changes.channel(), "test-a")
                for _ in range(100):
                    if fired:
                        break
                    await asyncio.sleep(0.02)
            finally:
                await watcher.stop()

    asyncio.run(scenario())
    assert fired == ["test-a"]


@pytest.mark.django_db(transaction=True)
def test_redis_down_does_not_break_a_change(fired):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        changes.changed("test-a")
    assert fired == ["test-a"]
    assert ChangeMarker.objects.get(topic="test-a").revision == 1


@pytest.mark.django_db(transaction=True)
def test_a_change_made_here_is_not_cleared_again_by_the_poll(fired):
    """Regression: the process that made a change cleared its caches, then its own marker poll
    saw the bumped revision and cleared them again (a key cached in between was dropped)."""
    assert changes.poll_once() == []
    changes.changed("test-a")
    assert fired == ["test-a"]
    assert changes.poll_once() == []
    ChangeMarker.objects.filter(topic="test-a").update(revision=5)  # another process
    assert changes.poll_once() == ["test-a"]


def test_a_process_ignores_its_own_redis_messages(fired):
    """Regression: a process's own change message came back through Redis and cleared its
    caches a second time, some time after the change."""
    changes._received(f"test-a {changes._origin}".encode())
    assert fired == []
    changes._received(b"test-a another-process")
    changes._received(b"test-b")  # a message without an origin
    assert fired == ["test-a", "test-b"]
