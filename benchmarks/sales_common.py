"""Shared set-up of the sales benchmarks: a scratch database filled with synthetic deals."""

from __future__ import annotations

import os
import random
import tempfile
from datetime import timedelta
from decimal import Decimal


def setup_django(smoke: bool) -> None:
    """Point Django at a scratch SQLite database (smoke) or the configured one, and migrate."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    if smoke:
        os.environ["KEQUN_DATA_DIR"] = tempfile.mkdtemp(prefix="kequn-bench-sales-")
        os.environ.pop("KEQUN_DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def fill_deals(n_deals: int, *, open_share: float, seed: int = 7) -> dict:
    """Replace every deal with n_deals synthetic ones over 20 reps, 12 months and 3 pipelines."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from kequn.customers.models import Customer
    from kequn.sales import services
    from kequn.sales.models import Deal, DealStageChange, Pipeline
    from kequn.security.actors import system_actor

    rng = random.Random(seed)
    by = system_actor("benchmark")
    today = timezone.localdate()
    now = timezone.now()
    with transaction.atomic():
        DealStageChange.objects.all().delete()
        Deal.objects.all().delete()
        users = get_user_model()
        reps = [
            users.objects.get_or_create(username=f"bench-rep-{i}", defaults={"is_staff": True})[0]
            for i in range(20)
        ]
        pipelines = list(Pipeline.objects.filter(name__startswith="bench-"))
        if not pipelines:
            pipelines = [services.create_pipeline(name=f"bench-{i}", by=by) for i in range(3)]
        stages = {p.pk: list(p.stages.order_by("position")) for p in pipelines}
        accounts = list(Customer.objects.filter(kind="company", external_ref__startswith="bench-"))
        if len(accounts) < 500:
            Customer.objects.bulk_create(
                Customer(kind="company", name=f"基准公司{i}", external_ref=f"bench-{i}")
                for i in range(len(accounts), 500)
            )
            accounts = list(
                Customer.objects.filter(kind="company", external_ref__startswith="bench-")
            )
        rows = []
        for i in range(n_deals):
            pipeline = pipelines[i % len(pipelines)]
            chain = stages[pipeline.pk]
            if rng.random() < open_share:
                stage = rng.choice([s for s in chain if not s.is_closed])
                status = "open"
                close = today + timedelta(days=rng.randint(0, 360))
            else:
                stage = chain[-2] if rng.random() < 0.4 else chain[-1]
                status = "won" if stage.is_won else "lost"
                close = today + timedelta(days=rng.randint(-60, 300))
            rows.append(
                Deal(
                    name=f"deal {i}",
                    account=accounts[i % len(accounts)],
                    pipeline=pipeline,
                    stage=stage,
                    status=status,
                    amount=Decimal(rng.randrange(1, 5000) * 100),
                    currency="CNY",
                    close_date=close,
                    probability=rng.choice([None] * 9 + [rng.randint(0, 100)]),
                    owner=reps[i % len(reps)],
                    created_at=now,
                    stage_entered_at=now,
                    closed_at=None if status == "open" else now,
                )
            )
        Deal.objects.bulk_create(rows, batch_size=5000)
    # Timed reads should not walk a write-ahead log of the whole fill, nor guess statistics.
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("ANALYZE")
    return {"pipelines": pipelines, "reps": reps}
