from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KeyringConfig(AppConfig):
    name = "kequn.security.keyring"
    label = "keyring"
    verbose_name = _("Encryption keys")
