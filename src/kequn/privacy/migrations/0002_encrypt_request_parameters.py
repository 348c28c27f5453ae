"""Encrypt the parameters of data-subject requests: a correction holds the new personal values."""

from django.db import migrations, transaction

import kequn.security.keyring.fields


def encrypt_parameters(apps, schema_editor):
    # Plain JSON written before this migration reads back as it is; saving it again encrypts it.
    using = schema_editor.connection.alias
    model, last = apps.get_model("privacy", "PrivacyRequest"), 0
    while True:
        with transaction.atomic(using=using):
            batch = list(
                model.objects.using(using)
                .filter(pk__gt=last)
                .order_by("pk")
                .only("pk", "parameters")[:1000]
            )
            if not batch:
                break
            model.objects.using(using).bulk_update(batch, ["parameters"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("privacy", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="privacyrequest",
            name="parameters",
            field=kequn.security.keyring.fields.EncryptedJSONField(
                blank=True,
                default=dict,
                help_text='Correction: {"fields": {...}}; consent withdrawal: {"channels": [...], '
                '"purposes": [...]}. New values of a correction are dropped once applied.',
                verbose_name="what was asked",
            ),
        ),
        migrations.RunPython(encrypt_parameters, migrations.RunPython.noop, elidable=False),
    ]
