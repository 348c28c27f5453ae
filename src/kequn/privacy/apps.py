from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    name = "kequn.privacy"
    label = "privacy"
    verbose_name = _("Data-subject requests")

    def ready(self) -> None:
        """Keep people erased on request from coming back through imports, events or restores."""
        from kequn.customers.guards import register_identity_block
        from kequn.privacy.services.erasure import replay_after_restore
        from kequn.privacy.services.suppression import describe_suppression, find_suppressed
        from kequn.security.backups.services import register_after_restore

        register_identity_block(find_suppressed, describe_suppression)
        register_after_restore(replay_after_restore)
