from django.contrib import admin
from unfold.admin import ModelAdmin

from kequn.events.models import Event


@admin.register(Event)
class EventAdmin(ModelAdmin):
    list_display = ("name", "type", "customer", "occurred_at")
