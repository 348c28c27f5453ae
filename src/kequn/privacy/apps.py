from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    name = "kequn.privacy"
    label = "privacy"
    verbose_name = _("Data-subject requests")

    def ready(self) -> None:
        """Block identities of people erased on request from coming back through imports."""
        from kequn.customers.guards import register_identity_block
        from kequn.privacy.services import describe_suppression, find_suppressed

        register_identity_block(find_suppressed, describe_suppression)
