"""Encrypt the messages of quarantined rows: they quote the rejected value."""

from django.db import migrations, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

import kequn.security.keyring.fields


def encrypt_messages(apps, schema_editor):
    using = schema_editor.connection.alias
    model, last = apps.get_model("ingest", "QuarantinedRow"), 0
    while True:
        with transaction.atomic(using=using):
            batch = list(
                model.objects.using(using)
                .annotate(_raw=Cast(F("message"), TextField()))
                .exclude(_raw="")
                .exclude(_raw__startswith="kq1:")
                .filter(pk__gt=last)
                .order_by("pk")
                .only("pk", "message")[:1000]
            )
            if not batch:
                break
            model.objects.using(using).bulk_update(batch, ["message"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ingest", "0002_encrypt_personal_payloads"),
    ]

    operations = [
        migrations.AlterField(
            model_name="quarantinedrow",
            name="message",
            field=kequn.security.keyring.fields.EncryptedCharField(
                blank=True, verbose_name="message"
            ),
        ),
        migrations.RunPython(encrypt_messages, migrations.RunPython.noop, elidable=False),
    ]
