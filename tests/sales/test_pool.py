"""The lead pool (公海池): claims within the limit, warnings, automatic returns, the history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from kequn.customers.models import Customer
from kequn.sales import services
from kequn.sales.models import AccountProfile, PoolEvent, PoolSettings, Task
from tests.sales.helpers import SYSTEM, make_account, make_rep

pytestmark = pytest.mark.django_db


def pool_account():
    return make_account(in_pool=True)


def test_claim_over_the_limit_is_refused():
    PoolSettings.objects.create(claim_limit=2)
    rep = make_rep()
    first, second, third = pool_account(), pool_account(), pool_account()
    services.claim_account(first, by=rep)
    services.claim_account(second, by=rep)
    with pytest.raises(ValidationError, match=r"claim limit reached: you hold 2 .*limit 2"):
        services.claim_account(third, by=rep)
    third.refresh_from_db()
    assert third.owner_id is None and AccountProfile.objects.get(customer=third).in_pool
    with pytest.raises(ValidationError, match="not in the lead pool"):
        services.claim_account(first, by=make_rep())


def test_idle_account_is_warned_then_returned_once():
    PoolSettings.objects.create(idle_days=30, warn_days=7)
    rep = make_rep()
    account = pool_account()
    start = timezone.now()
    services.claim_account(account, by=rep, at=start)
    quiet = services.reclaim_idle_accounts(by=SYSTEM, now=start + timedelta(days=10))
    assert quiet.warned == [] and quiet.returned == []
    warned = services.reclaim_idle_accounts(by=SYSTEM, now=start + timedelta(days=24))
    assert warned.warned == [account.pk]
    again = services.reclaim_idle_accounts(by=SYSTEM, now=start + timedelta(days=25))
    assert again.warned == []  # warned once per idle spell
    assert Task.objects.filter(owner=rep, account=account).count() == 1
    returned = services.reclaim_idle_accounts(by=SYSTEM, now=start + timedelta(days=31))
    assert returned.returned == [account.pk]
    account.refresh_from_db()
    assert account.owner_id is None
    kinds = list(
        PoolEvent.objects.filter(account=account)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )
    assert kinds == ["added", "claimed", "warned", "reclaimed"]
    assert services.reclaim_idle_accounts(by=SYSTEM, now=start + timedelta(days=32)).returned == []


def test_an_activity_resets_the_idle_clock():
    PoolSettings.objects.create(idle_days=30, warn_days=7)
    rep = make_rep()
    account = pool_account()
    start = timezone.now() - timedelta(days=29)
    services.claim_account(account, by=rep, at=start)
    services.log_activity(
        services.ActivityInput(kind="call", subject="回访", account_id=account.pk), by=rep
    )
    result = services.reclaim_idle_accounts(by=SYSTEM, now=timezone.now() + timedelta(days=2))
    assert result.returned == []


def test_reclaim_command_with_now(capsys):
    PoolSettings.objects.create(idle_days=5, warn_days=1)
    rep = make_rep()
    account = make_account(rep)
    AccountProfile.objects.filter(customer=account).update(
        last_activity_at=timezone.now() - timedelta(days=3)
    )
    later = (timezone.localdate() + timedelta(days=10)).isoformat()
    call_command("sales", "reclaim", "--now", later)
    assert "returned 1" in capsys.readouterr().out
    assert Customer.objects.get(pk=account.pk).owner_id is None
