from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "kequn.monitoring"
    verbose_name = _("Monitoring")

    def ready(self) -> None:
        from kequn.monitoring import metrics, rules
        from kequn.security import roles
        from kequn.security.keyring.services import decryption_failed
        from kequn.security.permissions import register_role_permissions

        # Alerts name staff and addresses: administrators handle them, auditors read them.
        register_role_permissions(
            {
                roles.ADMINISTRATOR: ["monitoring.*"],
                roles.AUDITOR: ["monitoring.view_alert"],
            }
        )

        def count_decryption_error(sender, purpose: str = "", **kwargs) -> None:
            metrics.DECRYPTION_ERRORS.labels(purpose[:60]).inc()
            rules.note_decryption_error(purpose[:60])

        decryption_failed.connect(
            count_decryption_error, dispatch_uid="monitoring-decryption-errors", weak=False
        )
