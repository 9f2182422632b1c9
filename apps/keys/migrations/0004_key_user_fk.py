import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0003_key_owners"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="virtualkey",
            name="user",
        ),
        migrations.RemoveField(
            model_name="virtualkey",
            name="user_id_external",
        ),
        migrations.RenameField(
            model_name="virtualkey",
            old_name="owner",
            new_name="user",
        ),
        migrations.AlterField(
            model_name="virtualkey",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="keys",
                to="teams.gatewayuser",
            ),
        ),
    ]
