"""The sales app's personal data: account profiles, deals, activities, tasks and pool history."""

from __future__ import annotations

from kequn.sales.models import AccountProfile, Activity, Deal, PoolEvent, Task
from kequn.security.personal_data import Erase, register

register(AccountProfile, path="customer", export_as="sales_accounts", position=200)
register(
    Deal,
    path="account",
    export_as="sales_deals",
    position=210,
    fields=["id", "name", "status", "amount", "currency", "close_date", "created_at", "closed_at"],
)
register(
    Activity,
    path=["account", "contact"],
    export_as="sales_activities",
    position=220,
    fields=[
        "id",
        "kind",
        "subject",
        "notes",
        "occurred_at",
        "location",
        "account_id",
        "contact_id",
    ],
    erase=Erase.DELETE,
    erase_count="sales_activities",
)
register(
    Task,
    path="account",
    export_as="sales_tasks",
    position=230,
    fields=["id", "title", "notes", "due_at", "done_at"],
)
register(
    PoolEvent,
    path="account",
    export_as="sales_pool_history",
    position=240,
    fields=["id", "kind", "at", "reason"],
)
