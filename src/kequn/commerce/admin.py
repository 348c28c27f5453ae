from django.contrib import admin
from unfold.admin import ModelAdmin

from kequn.commerce.models import Category, Channel, Order, Product


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    list_display = ("number", "customer", "status", "total_amount", "ordered_at")


@admin.register(Product)
class ProductAdmin(ModelAdmin):
    list_display = ("sku", "name", "price")


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    list_display = ("code", "name", "parent")


@admin.register(Channel)
class ChannelAdmin(ModelAdmin):
    list_display = ("code", "name", "kind")
