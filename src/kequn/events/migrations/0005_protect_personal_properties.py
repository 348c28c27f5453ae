"""Move personal data already stored in event properties into the encrypted column."""

from django.db import migrations, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

from kequn.events.personal import merge_personal, split_personal

# Rows that cannot hold personal data are skipped without being read into Python.
CANDIDATES = (
    r"@|[0-9]{7}|mail|phone|mobile|tel|addr|street|post|zip|card|ident|national|citizen"
    r"|手机|电话|邮|地址|身份证|证件|联系"
)


def protect_properties(apps, schema_editor):
    """Split every stored event's properties as new events are split, batch by batch."""
    using = schema_editor.connection.alias
    event_model, last = apps.get_model("events", "Event"), 0
    while True:
        with transaction.atomic(using=using):
            batch = list(
                event_model.objects.using(using)
                .annotate(_raw=Cast(F("properties"), TextField()))
                .filter(pk__gt=last, _raw__iregex=CANDIDATES)
                .order_by("pk")
                .only("pk", "properties", "personal_properties")[:2000]
            )
            if not batch:
                break
            changed = []
            for event in batch:
                cleaned, found = split_personal(event.properties)
                if cleaned != event.properties:
                    event.properties = cleaned
                    event.personal_properties = (
                        merge_personal(event.personal_properties, found) or None
                    )
                    changed.append(event)
            event_model.objects.using(using).bulk_update(
                changed, ["properties", "personal_properties"]
            )
        last = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("events", "0004_source_key_type_event_personal_properties"),
        ("keyring", "0001_initial"),
    ]

    operations = [migrations.RunPython(protect_properties, migrations.RunPython.noop)]
