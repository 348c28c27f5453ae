from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _prepare_keys(sender, using="default", **kwargs):
    # After migrate and after flush (tests, restores): drop cached keys that may be gone and
    # create the first data key of every field outside any request's transaction.
    from django.db import connections

    from kequn.security.keyring import services
    from kequn.security.keyring.models import DataKey

    services.reset_cache()
    if DataKey._meta.db_table in connections[using].introspection.table_names():
        services.ensure_data_keys(using)


class KeyringConfig(AppConfig):
    name = "kequn.security.keyring"
    label = "keyring"
    verbose_name = _("Encryption keys")

    def ready(self) -> None:
        post_migrate.connect(_prepare_keys, sender=self, dispatch_uid="keyring-prepare-keys")
