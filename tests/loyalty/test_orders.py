"""Points on imported orders: earned once even when re-imported, taken back on a refund."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kequn.commerce.models import Order
from kequn.ingest.runs import ImportInterruptedError, import_file
from kequn.loyalty import selectors, services
from kequn.loyalty.models import LedgerEntry, Member, TierChange, TierCheck
from kequn.loyalty.tasks import nightly_loyalty_task
from tests.factories import make_customer, make_order
from tests.loyalty.conftest import BY

HEADER = "订单号,手机,下单时间,订单金额,状态\n"


def write_orders(tmp_path, rows: list[str], name: str = "o.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def day(days_ago: int) -> str:
    return (timezone.localdate() - timedelta(days=days_ago)).isoformat()


def test_imported_orders_earn_once_and_refunds_take_back(tmp_path, programme, tiers):
    rows = [
        f"S-1,13800138001,{day(30)},1299.50,已付款",
        f"S-2,13800138001,{day(1)},100,已付款",
        f"S-3,13800138002,{day(30)},50,待付款",
    ]
    path = write_orders(tmp_path, rows)
    import_file(path, "orders", by=BY)
    member = Member.objects.get(customer=Order.objects.get(number="S-1").customer)
    # S-1 is past its 7 pending days; S-2 is still pending; S-3 is not paid: nothing.
    assert (member.balance, member.pending) == (1299, 100)
    assert not Member.objects.filter(customer=Order.objects.get(number="S-3").customer).exists()
    # Spend 1000 yuan in 12 months: silver at once (the threshold is 1000).
    assert member.tier.code == "silver"
    assert TierChange.objects.filter(member=member, to_tier__code="silver").exists()

    import_file(path, "orders", by=BY)  # the same file again: nothing earned twice
    rows[0] = rows[0].replace("1299.50", "1299.60")  # changed: re-notified, still once
    import_file(write_orders(tmp_path, rows, "o2.csv"), "orders", by=BY)
    assert LedgerEntry.objects.filter(member=member, kind="earn").count() == 2

    rows[0] = f"S-1,13800138001,{day(30)},1299.50,已退款"
    import_file(write_orders(tmp_path, rows, "o3.csv"), "orders", by=BY)
    import_file(write_orders(tmp_path, rows, "o4.csv"), "orders", by=BY)
    member.refresh_from_db()
    assert (member.balance, member.pending) == (0, 100)
    assert LedgerEntry.objects.filter(member=member, kind="reverse").count() == 1
    assert list(selectors.find_differences()) == []


def test_an_import_checks_each_buyers_tier_once_at_its_end(tmp_path, programme, tiers):
    # Three batches of one row, all the same buyer: 3 x 2,000 yuan crosses gold (5,000)
    # only with the third order; the end-of-import check sees all three.
    rows = [f"T-{i},13800138003,{day(20)},2000,已付款" for i in range(3)]
    path = write_orders(tmp_path, rows)
    with CaptureQueriesContext(connection) as queries:
        import_file(path, "orders", by=BY, batch_size=1)
    member = Member.objects.get(customer=Order.objects.get(number="T-0").customer)
    assert member.tier.code == "gold"
    assert list(TierChange.objects.filter(member=member).values_list("to_tier__code", flat=True))
    assert not TierCheck.objects.exists()
    sums = [q for q in queries if 'SUM("commerce_order"."total_amount")' in q["sql"]]
    assert len(sums) == 1


def test_the_nightly_task_checks_the_tiers_an_interrupted_import_left(tmp_path, programme, tiers):
    path = write_orders(
        tmp_path, [f"T-9,13800138004,{day(20)},6000,已付款", f"T-10,13800138004,{day(9)},5,已付款"]
    )
    with pytest.raises(ImportInterruptedError):
        import_file(path, "orders", by=BY, batch_size=1, stop_after_batches=1)
    member = Member.objects.get(customer=Order.objects.get(number="T-9").customer)
    assert member.balance == 6000 and member.tier.code == "normal"  # the run died first
    assert TierCheck.objects.filter(member=member).exists()
    assert nightly_loyalty_task.call()["upgraded_after_imports"] == 1
    member.refresh_from_db()
    assert member.tier.code == "gold" and not TierCheck.objects.exists()


def test_a_dry_run_earns_nothing(tmp_path, programme):
    import_file(
        write_orders(tmp_path, [f"S-9,13800138009,{day(30)},500,已付款"]),
        "orders",
        dry_run=True,
        by=BY,
    )
    assert not LedgerEntry.objects.exists() and not Member.objects.exists()


def test_points_follow_tier_category_and_rounding(programme, tiers):
    programme.category_multipliers = {"phones": 2}
    programme.pending_days = 0
    programme.save()
    customer = make_customer("多倍")
    services.enroll_member(customer_id=customer.pk, by=BY)
    Member.objects.filter(pk=customer.pk).update(tier=tiers[2])  # gold: × 1.5
    order = make_order(customer, amount="99.99")  # a phone: × 2
    done = services.earn_for_orders([order.pk], BY)
    assert done["points"] == int(99.99 * 1.5 * 2)  # 299, rounded down
    assert Member.objects.get(pk=customer.pk).balance == 299


def test_without_automatic_enrolment_only_members_earn(programme):
    programme.auto_enroll = False
    programme.save()
    stranger, member = make_customer("路人"), make_customer("会员")
    services.enroll_member(customer_id=member.pk, by=BY)
    orders = [make_order(stranger, days_ago=30).pk, make_order(member, days_ago=30).pk]
    assert services.earn_for_orders(orders, BY)["earned"] == 1
    assert not Member.objects.filter(pk=stranger.pk).exists()
