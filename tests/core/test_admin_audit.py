"""Changes made in the admin's routing and proxy-config pages are in the audit log too, with
credentials redacted."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from apps.core.models import AuditLog
from apps.routing.models import Deployment, ModelGroup
from tests.routing.test_admin import SECRET, _deployment_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Any) -> Any:
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(root)
    return client


def test_deployment_changes_are_audited_without_the_key(admin_client: Any) -> None:
    group = ModelGroup.objects.create(name="g")
    response = admin_client.post("/admin/routing/deployment/add/", _deployment_form(group))
    assert response.status_code == 302
    dep = Deployment.objects.get()
    created = AuditLog.objects.get(object_type="deployment", action="created")
    assert created.actor == "admin:root" and created.source == "admin"
    assert created.after["api_key"] == "[redacted]" and SECRET not in str(created.after)
    admin_client.post(f"/admin/routing/deployment/{dep.pk}/delete/", {"post": "yes"})
    assert AuditLog.objects.filter(object_type="deployment", action="deleted").exists()
    assert SECRET not in str(list(AuditLog.objects.values("before", "after")))
