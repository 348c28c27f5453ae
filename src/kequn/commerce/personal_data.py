"""The commerce app's personal data: orders and their lines, kept anonymised on erasure.

Orders are accounting records that must be kept for years, so an erasure detaches them from
the person instead of deleting them; their lines then lead to no one.
"""

from __future__ import annotations

from kequn.commerce.models import Order, OrderLine
from kequn.security.personal_data import Erase, register

register(
    Order,
    path="customer",
    export_as="orders",
    position=70,
    related=["channel__name"],
    order_by=["ordered_at", "id"],
    erase=Erase.DETACH,
    erase_count="orders_anonymised",
)
register(
    OrderLine,
    path="order__customer",
    export_as="order_lines",
    position=80,
    related=["product__sku", "product__name"],
    order_by=["order_id", "id"],
    erase=Erase.KEEP,
)
