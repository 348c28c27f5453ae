"""Back office: stored recommendations and training runs (read only)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.recommend.models import Recommendation, TrainingRun
from kequn.recommend.reasons import get_reason_label


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Recommendation)
class RecommendationAdmin(CustomerScopedAdminMixin, ReadOnlyAdmin):
    list_display = ["customer", "rank", "product", "score", "reason", "created_at"]
    list_select_related = ["customer", "product"]
    raw_id_fields = ["customer", "product"]
    search_fields = ["=customer__id"]
    show_full_result_count = False

    @admin.display(description=_("why"), ordering="source")
    def reason(self, obj: Recommendation) -> str:
        """Say why the product is recommended instead of naming the model's code."""
        return get_reason_label(obj.source)


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "finished_at", "model", "customers", "interactions"]
