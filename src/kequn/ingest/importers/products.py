"""Importing products, with their categories."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.text import slugify
from django.utils.translation import gettext as _

from kequn.commerce.models import Category, Product
from kequn.ingest.cleaning import clean_amount, clean_name
from kequn.ingest.importers.base import Importer, Rejection, RowError


@dataclass
class ProductRecord:
    row_number: int
    sku: str
    values: dict[str, object]
    category: str


_FALSE = {"false", "0", "no", "n", "否", "下架", "draft", "archived", "inactive"}


class ProductImporter(Importer):
    kind = "products"

    def parse(self, row_number: int, row: dict[str, str]) -> ProductRecord:
        sku = self.get(row, "sku")
        if not sku:
            raise RowError("sku", "missing_value", _("no SKU: fill it in"))
        if len(sku) > 64:
            raise RowError("sku", "too_long", _("SKU longer than 64 characters"))
        name = self.get(row, "name")
        if not name:
            raise RowError("name", "missing_value", _("no product name: fill it in"))
        price, currency = self.clean("price", clean_amount, self.get(row, "price"))
        if price < 0:
            raise RowError("price", "negative_amount", _("price below zero"))
        values: dict[str, object] = {"name": clean_name(name)[:200], "price": price}
        currency = self.get(row, "currency").upper()[:3] or currency
        if currency:
            values["currency"] = currency
        brand = self.get(row, "brand")
        if brand:
            values["brand"] = brand[:100]
        active = self.get(row, "is_active")
        if active:
            values["is_active"] = active.lower() not in _FALSE
        return ProductRecord(row_number, sku, values, self.get(row, "category")[:100])

    def apply(self, records: list[ProductRecord]) -> tuple[dict[int, str], list[Rejection]]:
        names = {r.category for r in records if r.category}
        categories = {c.name: c.pk for c in Category.objects.filter(name__in=names)}
        for name in sorted(names - set(categories)):
            code = slugify(name, allow_unicode=True)[:50] or name[:50]
            categories[name] = Category.objects.get_or_create(code=code, defaults={"name": name})[
                0
            ].pk
        products = Product.objects.in_bulk({r.sku for r in records}, field_name="sku")
        outcomes, create, dirty = {}, {}, {}
        for record in records:
            values = dict(record.values)
            if record.category:
                values["category_id"] = categories[record.category]
            product = products.get(record.sku) or create.get(record.sku)
            if product is None:
                create[record.sku] = Product(sku=record.sku, **values)
                outcomes[record.row_number] = "inserted"
                continue
            changed = [k for k, v in values.items() if getattr(product, k) != v]
            for k in changed:
                setattr(product, k, values[k])
            if changed and product.pk:
                dirty.setdefault(record.sku, set()).update(changed)
            outcomes[record.row_number] = "updated" if changed else "unchanged"
        Product.objects.bulk_create(list(create.values()), batch_size=1000)
        if dirty:
            fields = sorted({f for names in dirty.values() for f in names})
            Product.objects.bulk_update([products[s] for s in dirty], fields)
        return outcomes, []
