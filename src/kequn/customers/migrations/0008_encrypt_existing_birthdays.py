"""Encrypt birthdays written before encryption, batch by batch (see 0005 for why not atomic)."""

from django.db import migrations, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

BATCH = 5000


def encrypt_birthdays(apps, schema_editor):
    customer = apps.get_model("customers", "Customer")
    using = schema_editor.connection.alias
    plaintext = (
        customer.objects.using(using)
        .annotate(_raw=Cast(F("birthday"), TextField()))
        .exclude(_raw__isnull=True)
        .exclude(_raw="")
        .exclude(_raw__startswith="kq1:")
    )
    last = 0
    while True:
        with transaction.atomic(using=using):
            batch = list(
                plaintext.filter(pk__gt=last).order_by("pk").only("pk", "birthday")[:BATCH]
            )
            if not batch:
                return
            # The field reads plaintext as it is and writes ciphertext.
            customer.objects.using(using).bulk_update(batch, ["birthday"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0007_encrypt_birthday"),
        ("keyring", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(encrypt_birthdays, migrations.RunPython.noop, elidable=False)
    ]
