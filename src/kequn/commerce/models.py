"""What customers buy and where: channels and stores, the product catalogue, orders."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer


class Channel(models.Model):
    """A place where customers buy: the online shop, the app, a physical store, a marketplace."""

    class Kind(models.TextChoices):
        ONLINE = "online", _("Online shop")
        APP = "app", _("App")
        STORE = "store", _("Physical store")
        MARKETPLACE = "marketplace", _("Marketplace")

    code = models.CharField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("store or channel")
        verbose_name_plural = _("stores and channels")
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    code = models.CharField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["code"]

    def __str__(self) -> str:
        return " › ".join(c.name for c in self.get_path())

    def get_path(self) -> list[Category]:
        """Return the categories from the root down to this one."""
        path, node, seen = [], self, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            path.append(node)
            node = node.parent
        return path[::-1]


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    brand = models.CharField(_("brand"), max_length=100, blank=True)
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="products",
        verbose_name=_("category"),
    )
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    is_consumable = models.BooleanField(
        _("consumable"),
        default=False,
        help_text=_("Bought again and again (cases, cables, service plans)."),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        indexes = [models.Index(fields=["category"], name="product_category_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        SHIPPED = "shipped", _("Shipped")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    # Statuses that count as a purchase in totals and analytics.
    PURCHASE_STATUSES = (Status.PAID, Status.SHIPPED, Status.COMPLETED)

    number = models.CharField(_("order number"), max_length=64, unique=True)
    # Indexed by order_customer_time_idx, which leads with the customer.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="orders",
        verbose_name=_("customer"),
    )
    # Indexed by order_channel_time_idx, which leads with the channel.
    channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="orders",
        verbose_name=_("store or channel"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.COMPLETED
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    total_amount = models.DecimalField(_("total"), max_digits=14, decimal_places=2)
    discount_amount = models.DecimalField(_("discount"), max_digits=14, decimal_places=2, default=0)
    ordered_at = models.DateTimeField(_("ordered at"))

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-ordered_at", "-id"]
        indexes = [
            # Status and total ride along so that score refreshes read purchases from the
            # index alone (a tenth of the table's pages), customer range by customer range.
            models.Index(
                fields=["customer", "ordered_at", "status", "total_amount"],
                name="order_customer_time_idx",
            ),
            models.Index(fields=["ordered_at"], name="order_time_idx"),
            models.Index(fields=["channel", "ordered_at"], name="order_channel_time_idx"),
            models.Index(fields=["status"], name="order_status_idx"),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="order_lines", verbose_name=_("product")
    )
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_id}"
