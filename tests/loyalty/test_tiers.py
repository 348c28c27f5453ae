"""Tiers: upgrade at once, downgrade one tier at a time at the yearly review, with history."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from kequn.loyalty import services
from kequn.loyalty.models import Member, TierChange
from tests.factories import make_customer, make_order
from tests.loyalty.conftest import BY


def test_upgrade_at_once_and_downgrade_one_tier_a_year(programme, tiers):
    customer = make_customer("升级")
    services.enroll_member(customer_id=customer.pk, by=BY)
    order = make_order(customer, amount="25000", days_ago=10)
    services.earn_for_orders([order.pk], BY)
    member = Member.objects.select_related("tier").get(pk=customer.pk)
    assert member.tier.code == "diamond"

    # A year and a half later nothing qualifies: down one tier per review, never further.
    later = timezone.now() + timedelta(days=540)
    result = services.review_tiers(by=BY, now=later)
    assert (result.upgraded, result.downgraded) == (0, 1)
    assert Member.objects.get(pk=customer.pk).tier.code == "gold"
    services.review_tiers(by=BY, now=later)
    assert Member.objects.get(pk=customer.pk).tier.code == "silver"
    history = list(TierChange.objects.filter(member=member).order_by("id"))
    assert [h.to_tier.code for h in history] == ["normal", "diamond", "gold", "silver"]
    assert history[2].reason.startswith("yearly review: spend 0.00")


def test_review_keeps_a_qualified_member_and_the_command_reports(programme, tiers, capsys):
    customer = make_customer("保级")
    services.enroll_member(customer_id=customer.pk, by=BY)
    services.earn_for_orders([make_order(customer, amount="6000", days_ago=10).pk], BY)
    call_command("loyalty", "review-tiers")
    assert "downgraded 0" in capsys.readouterr().out
    assert Member.objects.get(pk=customer.pk).tier.code == "gold"


def test_tier_changes_fire_the_listener_after_commit(
    programme, tiers, django_capture_on_commit_callbacks
):
    seen = []
    services.register_tier_listener(lambda ids, payload: seen.append((ids, payload["tier"])))
    customer = make_customer("通知")
    services.enroll_member(customer_id=customer.pk, by=BY)
    with django_capture_on_commit_callbacks(execute=True):
        services.earn_for_orders([make_order(customer, amount="1500", days_ago=10).pk], BY)
    assert ([customer.pk], "silver") in seen


def test_a_batch_of_upgrades_fires_once_per_tier_move(
    programme, tiers, django_capture_on_commit_callbacks
):
    seen = []
    services.register_tier_listener(lambda ids, payload: seen.append((sorted(ids), payload)))
    silver = [make_customer(f"银{i}") for i in range(3)]
    gold = make_customer("金")
    orders = [make_order(c, amount="1500", days_ago=10).pk for c in silver]
    orders.append(make_order(gold, amount="6000", days_ago=10).pk)
    for customer in [*silver, gold]:
        services.enroll_member(customer_id=customer.pk, by=BY)
    with django_capture_on_commit_callbacks(execute=True):
        services.earn_for_orders(orders, BY)
    moves = {payload["tier"]: ids for ids, payload in seen}
    assert len(seen) == 2
    assert moves == {"gold": [gold.pk], "silver": sorted(c.pk for c in silver)}
