"""Importing orders and their lines; buyers not known yet become customers."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from kequn.commerce.hooks import notify_orders_written
from kequn.commerce.models import Channel, Order, OrderLine, Product
from kequn.customers.selectors import find_identity_owners
from kequn.ingest.cleaning import (
    clean_amount,
    clean_datetime,
    clean_name,
    clean_quantity,
)
from kequn.ingest.importers.base import Importer, Rejection, RowError
from kequn.ingest.importers.customers import CustomerImporter, CustomerRecord

_STATUSES = {
    "paid": "paid", "partially_paid": "paid", "partially_refunded": "paid", "authorized": "pending",
    "pending": "pending", "unpaid": "pending", "shipped": "shipped", "fulfilled": "shipped",
    "completed": "completed", "complete": "completed", "closed": "completed",
    "cancelled": "cancelled", "canceled": "cancelled", "voided": "cancelled",
    "refunded": "refunded", "已付款": "paid", "已支付": "paid", "待付款": "pending",
    "待支付": "pending", "已发货": "shipped", "已完成": "completed", "交易成功": "completed",
    "已取消": "cancelled", "交易关闭": "cancelled", "已退款": "refunded",
}  # fmt: skip


@dataclass
class OrderRecord:
    row_number: int
    number: str
    order: dict[str, object]
    keys: list[tuple[str, str, str]]
    name: str
    line: dict[str, object] | None


class OrderImporter(Importer):
    kind = "orders"

    def parse(self, row_number: int, row: dict[str, str]) -> OrderRecord:
        number = self.get(row, "number")
        if not number:
            raise RowError("number", "missing_value", _("no order number: fill it in"))
        if len(number) > 64:
            raise RowError("number", "too_long", _("order number longer than 64 characters"))
        raw_time = self.get(row, "ordered_at")
        if not raw_time:
            raise RowError("ordered_at", "missing_value", _("no order date: fill it in"))
        order: dict[str, object] = {
            "ordered_at": self.clean("ordered_at", lambda v: clean_datetime(v, self.tz), raw_time)
        }
        currency = self.get(row, "currency").upper()[:3]
        line = None
        sku = self.get(row, "sku")
        if sku:
            quantity = self.clean("quantity", clean_quantity, self.get(row, "quantity") or "1")
            unit_price, cur = self.clean(
                "unit_price", clean_amount, self.get(row, "unit_price") or "0"
            )
            if unit_price < 0:
                raise RowError("unit_price", "negative_amount", _("unit price below zero"))
            currency = currency or cur
            line = {
                "sku": sku[:64],
                "quantity": quantity,
                "unit_price": unit_price,
                "amount": unit_price * quantity,
            }
        raw_total = self.get(row, "total")
        if raw_total:
            total, cur = self.clean("total", clean_amount, raw_total)
            if total < 0:
                raise RowError(
                    "total",
                    "negative_amount",
                    _("order total below zero: import refunds as status refunded"),
                )
            order["total_amount"] = total
            currency = currency or cur
        elif line is not None:
            order["total_amount"] = line["amount"]
        else:
            raise RowError("total", "missing_value", _("no total and no line price: fill one in"))
        raw_discount = self.get(row, "discount")
        if raw_discount:
            order["discount_amount"] = abs(self.clean("discount", clean_amount, raw_discount)[0])
        order["currency"] = currency or "CNY"
        status = self.get(row, "status")
        if status:
            mapped = _STATUSES.get(status.lower().replace(" ", "_"))
            if mapped is None:
                raise RowError(
                    "status",
                    "invalid_status",
                    _(
                        "unknown order status %(s)r: use paid, shipped, completed, cancelled or refunded"
                    )
                    % {"s": status[:30]},
                )
            order["status"] = mapped
        channel = self.get(row, "channel")
        if channel:
            order["channel"] = channel[:50]
        return OrderRecord(
            row_number,
            number,
            order,
            self.identity_keys(row, "customer_"),
            self.get(row, "name"),
            line,
        )

    def apply(self, records: list[OrderRecord]) -> tuple[dict[int, str], list[Rejection]]:
        rejections: list[Rejection] = []
        skus = {r.line["sku"] for r in records if r.line}
        products = {p.sku: p.pk for p in Product.objects.filter(sku__in=skus)}
        kept = []
        for record in records:
            if record.line and record.line["sku"] not in products:
                rejections.append(Rejection(record.row_number, "sku", "unknown_product",
                    _("no product with SKU %(sku)r: import products first, then retry") % {"sku": record.line["sku"]}, {}))  # fmt: skip
            else:
                kept.append(record)
        records = kept
        # Buyers not known yet become customers, so no order is left without its buyer.
        buyers = [
            CustomerRecord(r.row_number, r.keys, {"name": clean_name(r.name)} if r.name else {}, {})
            for r in records
            if r.keys
        ]
        owners = find_identity_owners({k for r in records for k in r.keys})
        missing = [b for b in buyers if not any(k in owners for k in b.keys)]
        if missing:
            CustomerImporter(self.mapping, self.checksum, self.actor, by=self.by).apply(missing)
            owners = find_identity_owners({k for r in records for k in r.keys})
        channel_codes = {r.order["channel"] for r in records if "channel" in r.order}
        channels = {c.code: c.pk for c in Channel.objects.filter(code__in=channel_codes)}
        for code in channel_codes - set(channels):
            channels[code] = Channel.objects.create(
                code=code, name=code, kind=Channel.Kind.ONLINE
            ).pk
        orders = Order.objects.in_bulk({r.number for r in records}, field_name="number")
        outcomes: dict[int, str] = {}
        new_orders: dict[str, Order] = {}
        dirty: dict[str, set[str]] = {}
        for record in records:
            values = dict(record.order)
            if "channel" in values:
                values["channel_id"] = channels[values.pop("channel")]
            customer_id = next((owners[k] for k in record.keys if k in owners), None)
            if customer_id:
                values["customer_id"] = customer_id
            order = orders.get(record.number) or new_orders.get(record.number)
            if order is None:
                order = Order(number=record.number, **values)
                new_orders[record.number] = order
                outcomes[record.row_number] = "inserted"
                continue
            changed = False
            for name, value in values.items():
                if getattr(order, name) != value:
                    setattr(order, name, value)
                    changed = True
                    if order.pk:
                        dirty.setdefault(record.number, set()).add(name)
            outcomes[record.row_number] = "updated" if changed else "unchanged"
        Order.objects.bulk_create(list(new_orders.values()), batch_size=1000)
        if dirty:
            fields = sorted({f for names in dirty.values() for f in names})
            Order.objects.bulk_update([orders[n] for n in dirty], fields, batch_size=1000)
        all_orders = {**orders, **new_orders}
        lines = {
            (line.order_id, line.product_id): line
            for line in OrderLine.objects.filter(order_id__in=[o.pk for o in all_orders.values()])
        }
        create, update = {}, {}
        for record in records:
            if not record.line:
                continue
            order = all_orders[record.number]
            key = (order.pk, products[record.line["sku"]])
            data = {k: record.line[k] for k in ("quantity", "unit_price", "amount")}
            line = lines.get(key) or create.get(key)
            if line is None:
                create[key] = OrderLine(order_id=order.pk, product_id=key[1], **data)
                if outcomes[record.row_number] == "unchanged":
                    outcomes[record.row_number] = "updated"
            elif any(getattr(line, k) != v for k, v in data.items()):
                for k, v in data.items():
                    setattr(line, k, v)
                if line.pk:
                    update[key] = line
                if outcomes[record.row_number] == "unchanged":
                    outcomes[record.row_number] = "updated"
        OrderLine.objects.bulk_create(list(create.values()), batch_size=1000)
        if update:
            OrderLine.objects.bulk_update(
                list(update.values()), ["quantity", "unit_price", "amount"]
            )
        # Apps reacting to orders (loyalty points) see the inserted and changed ones.
        touched = {r.number for r in records if outcomes.get(r.row_number) != "unchanged"}
        notify_orders_written((all_orders[n] for n in touched), by=self.by)
        return outcomes, rejections
