"""Encrypt identity values and street addresses written before encryption, batch by batch.

Not atomic: every batch commits on its own, so a large install upgrades without one huge
transaction, and an interrupted upgrade continues where it stopped when migrate runs again.
"""

from django.db import migrations, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

BATCH = 2000


def _plaintext_rows(model, field, using):
    return (
        model.objects.using(using)
        .annotate(_raw=Cast(F(field), TextField()))
        .exclude(_raw="")
        .exclude(_raw__startswith="kq1:")
    )


def _encrypt(model, fields, using, extra=None):
    last = 0
    while True:
        with transaction.atomic(using=using):
            query = _plaintext_rows(model, fields[0], using)
            for name in fields[1:]:
                query = query | _plaintext_rows(model, name, using)
            batch = list(query.filter(pk__gt=last).order_by("pk")[:BATCH])
            if not batch:
                return
            names = list(fields)
            if extra:
                names += extra(batch)
            # Saving through the encrypted fields encrypts; rows half done are fine (the
            # fields decrypt what is already encrypted and pass plaintext through).
            model.objects.using(using).bulk_update(batch, names)
        last = batch[-1].pk


def encrypt_rows(apps, schema_editor):
    from kequn.security.keyring.services import blind_indexes  # noqa: PLC0415 -- loaded when the migration runs, not when it is listed

    using = schema_editor.connection.alias

    def index(batch):
        for identity, digest in zip(batch, blind_indexes([i.value for i in batch]), strict=True):
            identity.value_index = digest
        return ["value_index"]

    _encrypt(apps.get_model("customers", "Identity"), ["value"], using, index)
    _encrypt(apps.get_model("customers", "Address"), ["line", "postcode"], using)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0004_encrypt_identities_addresses"),
        ("keyring", "0001_initial"),
    ]

    operations = [migrations.RunPython(encrypt_rows, migrations.RunPython.noop, elidable=False)]
