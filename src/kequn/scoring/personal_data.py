"""The scoring app's personal data: the person's scores and their lifecycle-stage history."""

from __future__ import annotations

from kequn.scoring.models import CustomerScore, StageChange
from kequn.security.personal_data import register

register(CustomerScore, path="customer", export_as="scores", position=110, order_by=None)
register(
    StageChange,
    path="customer",
    export_as="stage_history",
    position=120,
    order_by=["changed_at", "id"],
)
