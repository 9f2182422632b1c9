import uuid

from django.db import migrations, models

import apps.teams.models


def fill_ids(apps, schema_editor):
    """Give existing organizations and teams their string ids (each its own uuid)."""
    for name, field in (("Organization", "organization_id"), ("Team", "team_id")):
        model = apps.get_model("teams", name)
        for row in model.objects.filter(**{field: None}).only("pk"):
            model.objects.filter(pk=row.pk).update(**{field: str(uuid.uuid4())})


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0002_tenancy"),
    ]

    operations = [
        migrations.RunPython(fill_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="organization",
            name="organization_id",
            field=models.CharField(default=apps.teams.models.new_id, max_length=200, unique=True),
        ),
        migrations.AlterField(
            model_name="team",
            name="team_id",
            field=models.CharField(default=apps.teams.models.new_id, max_length=200, unique=True),
        ),
    ]
