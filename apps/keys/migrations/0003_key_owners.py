"""Keys owned by a Django user or a bare user id now belong to an internal user (own transaction,
so that the schema changes of 0004 do not meet pending row triggers on PostgreSQL)."""

from django.contrib.auth import get_user_model
from django.db import migrations


def _free_user_id(GatewayUser, wanted):
    user_id, n = wanted, 1
    while GatewayUser.objects.filter(user_id=user_id).exists():
        n += 1
        user_id = f"{wanted}-{n}"
    return user_id


def owners_forward(apps, schema_editor):
    """Keys owned by a Django user or by a bare user id now belong to an internal user."""
    GatewayUser = apps.get_model("teams", "GatewayUser")
    VirtualKey = apps.get_model("keys", "VirtualKey")
    keys = VirtualKey.objects.exclude(user__isnull=True, user_id_external="").select_related("user")
    for key in keys:
        owner = None
        if key.user is not None:
            owner = GatewayUser.objects.filter(auth_user=key.user).first()
            if owner is None:
                wanted = key.user_id_external or getattr(key.user, get_user_model().USERNAME_FIELD)
                owner = GatewayUser.objects.filter(user_id=wanted, auth_user__isnull=True).first()
                if owner is not None:
                    owner.auth_user = key.user
                    owner.save(update_fields=["auth_user"])
                else:
                    owner = GatewayUser.objects.create(
                        user_id=_free_user_id(GatewayUser, wanted),
                        user_email=key.user.email or "",
                        user_role="proxy_admin" if key.user.is_superuser else "internal_user",
                        auth_user=key.user,
                    )
        else:
            owner, _ = GatewayUser.objects.get_or_create(user_id=key.user_id_external)
        VirtualKey.objects.filter(pk=key.pk).update(owner=owner)


def owners_backward(apps, schema_editor):
    VirtualKey = apps.get_model("keys", "VirtualKey")
    for key in VirtualKey.objects.filter(owner__isnull=False).select_related("owner"):
        VirtualKey.objects.filter(pk=key.pk).update(
            user_id_external=key.owner.user_id, user=key.owner.auth_user
        )


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0002_tenancy"),
    ]

    operations = [
        migrations.RunPython(owners_forward, owners_backward),
    ]
