"""Members with known grants, for the loyalty tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone, translation

from kequn.loyalty import services
from kequn.loyalty.models import LedgerEntry, Member, Programme, Tier
from kequn.security.actors import system_actor
from tests.factories import make_customer

BY = system_actor("tests")


@pytest.fixture(autouse=True)
def english(settings):
    """Messages in English (the default language is Chinese): the tests read them."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def programme(db) -> Programme:
    """The default programme: 1 point per yuan, 7 pending days, expiry after 365 days."""
    programme = services.get_programme()
    programme.expiry = Programme.Expiry.DAYS
    programme.expiry_days = 365
    programme.save()
    return programme


@pytest.fixture
def tiers(db) -> list[Tier]:
    return [
        Tier.objects.create(code="normal", name="普通", rank=0, threshold=0),
        Tier.objects.create(
            code="silver", name="银卡", rank=1, threshold=1000, earn_multiplier="1.2"
        ),
        Tier.objects.create(
            code="gold", name="金卡", rank=2, threshold=5000, earn_multiplier="1.5"
        ),
        Tier.objects.create(
            code="diamond", name="钻石", rank=3, threshold=20000, earn_multiplier=2
        ),
    ]


@pytest.fixture
def member(programme) -> Member:
    return services.enroll_member(customer_id=make_customer("会员").pk, by=BY)


def give(
    member: Member,
    points: int,
    key: str,
    *,
    expires_in_days: int | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Grant available points that expire in the given number of days."""
    now = now or timezone.now()
    entry = services.grant_points(customer_id=member.pk, points=points, key=key, by=BY, now=now)
    if expires_in_days is not None:
        LedgerEntry.objects.filter(pk=entry.pk).update(
            expires_at=now + timedelta(days=expires_in_days)
        )
    return entry


def balance(member: Member) -> int:
    member.refresh_from_db()
    return member.balance
