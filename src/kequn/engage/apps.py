from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EngageConfig(AppConfig):
    name = "kequn.engage"
    verbose_name = _("Engagement")

    def ready(self) -> None:
        """Grant the roles their engagement permissions (marketing sends, analysts read)."""
        from kequn.security import roles
        from kequn.security.permissions import register_role_permissions

        register_role_permissions(
            {
                roles.MARKETING: [
                    "engage.view_*",
                    "engage.add_campaign",
                    "engage.change_campaign",
                    "engage.add_template",
                    "engage.change_template",
                    "engage.delete_template",
                    "engage.add_variant",
                    "engage.change_variant",
                    "engage.delete_variant",
                    "engage.send_campaign",
                ],
                roles.ANALYST: [
                    "engage.view_campaign",
                    "engage.view_run",
                    "engage.view_template",
                    "engage.view_variant",
                ],
                roles.AUDITOR: ["engage.view_campaign", "engage.view_run"],
            },
            custom=[("engage", "campaign", "send_campaign", _("Can send campaigns"))],
        )
