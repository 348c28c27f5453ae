"""Prepare a ready-to-use installation: tables, an admin account, demo data."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from kequn.demo.generator import DemoSummary, generate_demo_data
from kequn.demo.service import create_demo_tickets
from kequn.security.actors import Actor
from kequn.security.audit.services import acting_as, record_event
from kequn.segments.models import Segment
from kequn.segments.services import create_segment


def migrate_database(verbosity: int = 0) -> None:
    """Create or update all tables."""
    call_command("migrate", interactive=False, verbosity=verbosity)


def ensure_admin(username: str = "admin", *, by: Actor) -> str | None:
    """Create the administrator with a random password; return it, or None if one exists."""
    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    # The user signals audit the new account; acting_as names who created it.
    with transaction.atomic(), acting_as(by):
        user_model.objects.create_superuser(username=username, email="", password=password)
    return password


def load_demo_data(
    n_customers: int, *, seed: int = 42, progress: bool = True, by: Actor
) -> DemoSummary:
    """Generate demo customers with their orders and events, and audit the load."""
    # The generator commits chunk by chunk (a million customers do not fit one
    # transaction); the audit entry follows the last chunk.
    summary = generate_demo_data(n_customers, seed=seed, progress=progress)
    create_demo_tickets(seed=seed, by=by)  # tickets on the SLA calendar, so reports are filled
    record_event(
        "demo.generate",
        actor=by,
        detail={
            "customers": summary.customers,
            "orders": summary.orders,
            "events": summary.events,
            "seed": seed,
        },
    )
    return summary


# Segments a marketer builds first, so the segment pages have members after `kequn demo`.
SAMPLE_SEGMENTS = [
    (
        "深圳流失风险客户",
        "深圳的客户中，生命周期为“有流失风险”的人。",
        {
            "match": "all",
            "conditions": [
                {"field": "city", "operator": "eq", "value": "深圳"},
                {"field": "lifecycle_stage", "operator": "eq", "value": "at_risk"},
            ],
        },
    ),
    (
        "重要价值客户",
        "RFM 分群为“重要价值”的客户。",
        {
            "match": "all",
            "conditions": [{"field": "rfm_segment", "operator": "eq", "value": "champions"}],
        },
    ),
    (
        "近 90 天复购客户",
        "最近 90 天内购买 2 次及以上的客户。",
        {
            "match": "all",
            "conditions": [{"field": "order_count", "operator": "gte", "value": 2, "days": 90}],
        },
    ),
    (
        "短信营销可触达",
        "当前同意接收短信营销的客户。",
        {
            "match": "all",
            "conditions": [
                {
                    "field": "consent",
                    "channel": "sms",
                    "purpose": "marketing",
                    "operator": "is",
                    "value": True,
                }
            ],
        },
    ),
]


def create_sample_segments(*, by: Actor) -> list[Segment]:
    """Create the sample segments not there yet (members fill in at the analytics refresh)."""
    created = []
    for name, description, rules in SAMPLE_SEGMENTS:
        if not Segment.objects.filter(name=name).exists():
            created.append(create_segment(name, rules, description=description, by=by))
    return created
