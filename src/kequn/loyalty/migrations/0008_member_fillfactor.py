"""Leave a fifth of each member page free on PostgreSQL.

Every earn, spend and expiry rewrites the member's row (its balance). With room on the
page PostgreSQL updates it in place (a HOT update, no new index entries); packed pages
forced a third of those updates to move the row and index it again.
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_member SET (fillfactor = 80)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_member RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0007_pending_tier_checks"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
