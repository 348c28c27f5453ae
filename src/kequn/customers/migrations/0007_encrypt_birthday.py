"""Keep the birth year in clear (for age rules) and turn the birthday column into ciphertext."""

from django.db import migrations
from django.db.models.functions import ExtractYear

import kequn.security.keyring.fields


def fill_birth_year(apps, schema_editor):
    customer = apps.get_model("customers", "Customer")
    customer.objects.using(schema_editor.connection.alias).filter(birthday__isnull=False).update(
        birth_year=ExtractYear("birthday")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0006_identity_unique_blind_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="birth_year",
            field=kequn.security.keyring.fields.YearOfField(
                editable=False, null=True, source="birthday", verbose_name="birth year"
            ),
        ),
        migrations.RunPython(fill_birth_year, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="customer",
            name="birthday",
            field=kequn.security.keyring.fields.EncryptedDateField(
                blank=True, null=True, verbose_name="birthday"
            ),
        ),
    ]
