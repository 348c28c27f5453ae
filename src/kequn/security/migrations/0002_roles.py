"""Create the role groups (administrator, marketing, sales, service, analyst, auditor)."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from kequn.security.permissions import sync_roles  # noqa: PLC0415 -- the roles of the code that runs, loaded only when this migration applies

    # On a new database the default permissions appear only after migrate; the post_migrate
    # handler completes the groups then, and `kequn roles sync` does it on demand.
    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0003_owner_processing_restricted"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
