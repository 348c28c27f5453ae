from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class SecurityConfig(AppConfig):
    name = "kequn.security"
    verbose_name = _("Security")

    def ready(self) -> None:
        from kequn.security.permissions import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="kequn.security.sync_roles")
        from django.db.models.signals import pre_save

        from kequn.security import admin_lookups, personal_data
        from kequn.security.inputs import strip_control_before_save

        pre_save.connect(strip_control_before_save, dispatch_uid="kequn.security.strip_control")
        admin_lookups.install()
        # Each app's personal_data module declares its tables (and registers the check).
        personal_data.discover()
