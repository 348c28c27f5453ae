from django.contrib import admin
from unfold.admin import ModelAdmin

from kequn.customers.models import Customer, Identity, Tag, TagGroup


@admin.register(Customer)
class CustomerAdmin(ModelAdmin):
    list_display = ("id", "name", "kind", "city", "created_at")
    search_fields = ("name",)


@admin.register(Identity)
class IdentityAdmin(ModelAdmin):
    list_display = ("value", "kind", "customer")


@admin.register(Tag)
class TagAdmin(ModelAdmin):
    list_display = ("name", "group", "kind")


@admin.register(TagGroup)
class TagGroupAdmin(ModelAdmin):
    list_display = ("name",)
