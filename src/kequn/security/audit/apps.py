from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "kequn.security.audit"
    label = "audit"
    verbose_name = _("Audit trail")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from kequn.security.audit import guard, signals

        connection_created.connect(guard.prepare_connection, dispatch_uid="kequn-audit-guard")
        signals.connect()
