"""The move of key owners from Django users and bare ids to internal users keeps every owner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("keys", "0001_initial"), ("teams", "0001_initial")]


@pytest.fixture
def executor(transactional_db: Any) -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    yield MigrationExecutor(connection)
    final = MigrationExecutor(connection)
    final.loader.build_graph()
    final.migrate(latest)


def test_key_owners_become_internal_users(executor: MigrationExecutor) -> None:
    old = executor.loader.project_state(BEFORE).apps
    user_model = old.get_model("auth", "User")
    key_model = old.get_model("keys", "VirtualKey")
    org_model = old.get_model("teams", "Organization")
    admin = user_model.objects.create(username="admin", email="a@example.com", is_superuser=True)
    bob = user_model.objects.create(username="bob")
    org_model.objects.create(name="acme")
    rows = {
        "by-id": {"user_id_external": "u-42"},
        "by-id-again": {"user_id_external": "u-42"},
        "by-login": {"user": admin},
        "by-both": {"user": bob, "user_id_external": "robert"},
        "nobody": {},
    }
    for n, (alias, owner) in enumerate(rows.items()):
        key_model.objects.create(digest=f"d{n}", key_display="sk-...", key_alias=alias, **owner)

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    new = executor.loader.project_state(executor.loader.graph.leaf_nodes()).apps
    keys = new.get_model("keys", "VirtualKey").objects.select_related("user", "user__auth_user")
    owners = {k.key_alias: (k.user.user_id, k.user.auth_user_id) if k.user else None for k in keys}
    assert owners == {
        "by-id": ("u-42", None),
        "by-id-again": ("u-42", None),
        "by-login": ("admin", admin.pk),
        "by-both": ("robert", bob.pk),
        "nobody": None,
    }
    users = new.get_model("teams", "GatewayUser").objects
    assert users.get(user_id="admin").user_role == "proxy_admin"
    assert users.get(user_id="admin").user_email == "a@example.com"
    org = new.get_model("teams", "Organization").objects.get()
    assert org.organization_alias == "acme" and org.organization_id
