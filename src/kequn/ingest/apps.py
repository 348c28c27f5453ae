from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IngestConfig(AppConfig):
    name = "kequn.ingest"
    verbose_name = _("Data import")

    def ready(self) -> None:
        """Register the importers of customers, orders and products."""
        # Importers use models, which can be imported only once the app registry is ready.
        from kequn.ingest.importers.base import register_importer
        from kequn.ingest.importers.customers import CustomerImporter
        from kequn.ingest.importers.orders import OrderImporter
        from kequn.ingest.importers.products import ProductImporter

        for importer in (CustomerImporter, OrderImporter, ProductImporter):
            register_importer(importer)
