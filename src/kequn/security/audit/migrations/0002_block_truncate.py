"""Reject TRUNCATE of the audit table on PostgreSQL (installs from before it was guarded)."""

from django.db import migrations

from kequn.security.audit import guard


def create_triggers(apps, schema_editor):
    guard.create_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, migrations.RunPython.noop)]
