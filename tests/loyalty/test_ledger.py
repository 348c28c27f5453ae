"""The points ledger: idempotency, FIFO by expiry, exact give-back, refunds, reconcile."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kequn.loyalty import selectors, services
from kequn.loyalty.models import Allocation, LedgerEntry, open_grants_q
from kequn.loyalty.services import LoyaltyError
from kequn.loyalty.services.base import lock_member
from kequn.loyalty.services.orders import earn_for_facts
from tests.factories import make_customer
from tests.loyalty.conftest import BY, balance, give


def test_balance_is_the_sum_of_the_ledger_and_a_key_writes_once(member):
    give(member, 100, "g1")
    give(member, 100, "g1")  # same key: nothing more
    services.spend_points(customer_id=member.pk, points=30, key="s1", by=BY)
    services.spend_points(customer_id=member.pk, points=30, key="s1", by=BY)
    assert balance(member) == 70
    assert LedgerEntry.objects.filter(member=member).count() == 2
    assert list(selectors.find_differences()) == []


def test_spending_takes_the_earliest_expiry_first_and_records_the_grants(member):
    late = give(member, 100, "late", expires_in_days=300)
    soon = give(member, 50, "soon", expires_in_days=10)
    never = give(member, 40, "never")
    LedgerEntry.objects.filter(pk=never.pk).update(expires_at=None)
    spend = services.spend_points(customer_id=member.pk, points=120, key="s", by=BY)
    drawn = {a.grant_id: a.points for a in Allocation.objects.filter(entry=spend)}
    assert drawn == {soon.pk: -50, late.pk: -70}
    remaining = dict(
        LedgerEntry.objects.filter(pk__in=[late.pk, soon.pk, never.pk]).values_list(
            "pk", "remaining"
        )
    )
    assert remaining == {late.pk: 30, soon.pk: 0, never.pk: 40}


def test_a_cancelled_spend_gives_back_exactly_its_grants_with_their_expiry(member):
    soon = give(member, 50, "soon", expires_in_days=10)
    late = give(member, 100, "late", expires_in_days=300)
    spend = services.spend_points(customer_id=member.pk, points=80, key="s", by=BY)
    back = services.reverse_entry(entry_id=spend.pk, key="r", by=BY)
    assert back.points == 80 and balance(member) == 150
    assert {a.grant_id: a.points for a in back.allocations.all()} == {soon.pk: 50, late.pk: 30}
    soon.refresh_from_db()
    assert soon.remaining == 50 and soon.expires_at < timezone.now() + timedelta(days=11)
    with pytest.raises(LoyaltyError, match="already reversed"):
        services.reverse_entry(entry_id=spend.pk, key="r2", by=BY)
    assert services.reverse_entry(entry_id=spend.pk, key="r", by=BY).pk == back.pk
    assert list(selectors.find_differences()) == []


def test_refunding_a_spent_grant_makes_a_debt_the_next_points_pay(member, programme):
    earned = give(member, 100, "order")
    services.spend_points(customer_id=member.pk, points=80, key="s", by=BY)
    services.reverse_entry(entry_id=earned.pk, key="refund", by=BY)
    assert balance(member) == -80
    assert list(selectors.find_differences()) == []
    give(member, 50, "next")
    assert balance(member) == -30
    assert LedgerEntry.objects.get(key="next").remaining == 0
    give(member, 50, "after")
    assert balance(member) == 20 and LedgerEntry.objects.get(key="after").remaining == 20
    assert list(selectors.find_differences()) == []


def test_without_negative_balances_a_refund_takes_back_at_most_the_balance(member, programme):
    programme.allow_negative_balance = False
    programme.save()
    earned = give(member, 100, "order")
    services.spend_points(customer_id=member.pk, points=80, key="s", by=BY)
    reversal = services.reverse_entry(entry_id=earned.pk, key="refund", by=BY)
    assert reversal.points == -20 and balance(member) == 0


def test_pending_points_become_available_on_their_date(member):
    now = timezone.now()
    entry = services.grant_points(
        customer_id=member.pk,
        points=60,
        key="p",
        by=BY,
        available_at=now + timedelta(days=7),
        now=now,
    )
    member.refresh_from_db()
    assert (member.balance, member.pending) == (0, 60)
    with pytest.raises(LoyaltyError, match="not enough points"):
        services.spend_points(customer_id=member.pk, points=1, key="s", by=BY)
    assert services.release_pending(by=BY, now=now + timedelta(days=6)) == 0
    assert services.release_pending(by=BY, now=now + timedelta(days=7, seconds=1)) == 1
    assert services.release_pending(by=BY, now=now + timedelta(days=8)) == 0
    member.refresh_from_db()
    assert (member.balance, member.pending) == (60, 0)
    entry.refresh_from_db()
    assert (entry.held, entry.remaining) == (0, 60)
    assert list(selectors.find_differences()) == []


def test_a_pending_grant_reversed_leaves_nothing(member):
    now = timezone.now()
    entry = services.grant_points(
        customer_id=member.pk,
        points=60,
        key="p",
        by=BY,
        available_at=now + timedelta(days=7),
        now=now,
    )
    services.reverse_entry(entry_id=entry.pk, key="r", by=BY)
    member.refresh_from_db()
    assert (member.balance, member.pending) == (0, 0)
    assert services.release_pending(by=BY, now=now + timedelta(days=8)) == 0


def test_expiry_clears_expired_points_once(member):
    now = timezone.now()
    give(member, 70, "old", expires_in_days=-1, now=now)
    keep = give(member, 30, "new", expires_in_days=30, now=now)
    result = services.expire_points(by=BY, now=now)
    assert (result.members, result.grants, result.points) == (1, 1, 70)
    assert balance(member) == 30
    assert services.expire_points(by=BY, now=now).points == 0
    assert balance(member) == 30
    entry = LedgerEntry.objects.get(member=member, kind="expire")
    assert entry.points == -70
    # The run wrote no grant: the member's mark says the old grant is spent out.
    member.refresh_from_db()
    assert member.expired_through == now
    open_keys = LedgerEntry.objects.filter(open_grants_q(), member=member)
    assert list(open_keys.values_list("key", flat=True)) == ["new"]
    assert selectors.get_expiring(member.pk, days=40, now=now)[0]["points"] == 30
    assert list(selectors.find_differences()) == []
    # The member's next write moves the expired points into the grant and clears the mark.
    services.spend_points(customer_id=member.pk, points=10, key="s", by=BY, now=now)
    old = LedgerEntry.objects.get(key="old")
    assert (old.remaining, old.expired) == (0, 70)
    keep.refresh_from_db()
    assert (keep.remaining, keep.expired) == (20, 0)
    member.refresh_from_db()
    assert (member.expired_through, member.balance) == (None, 20)
    assert list(selectors.find_differences()) == []


def test_expiry_and_earning_turn_foreign_key_checks_back_on_after_their_entries(member):
    """Expire and earn entries skip their per-row checks; the rest of the transaction does not."""
    if connection.vendor != "postgresql":
        pytest.skip("session_replication_role is PostgreSQL's")
    now = timezone.now()
    give(member, 70, "old", expires_in_days=-1, now=now)
    assert services.expire_points(by=BY, now=now).points == 70
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
    with transaction.atomic():
        facts = [(None, "FK-1", member.pk, "completed", Decimal("40"), now - timedelta(days=9))]
        assert earn_for_facts(facts, BY, now)["points"] == 40
        with connection.cursor() as cursor:
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            with pytest.raises(IntegrityError), transaction.atomic():
                LedgerEntry.objects.create(
                    member_id=member.pk + 10**9, kind="adjust", points=1, key="ghost", reason="x"
                )


def test_a_grant_written_after_a_run_with_a_past_expiry_expires_at_the_next_run(member):
    now = timezone.now()
    give(member, 70, "old", expires_in_days=-2, now=now)
    assert services.expire_points(by=BY, now=now).points == 70
    # An order imported late earns a grant whose expiry has passed already; it lies above
    # the member's mark, so it counts as open until the next run expires it.
    ordered = now - timedelta(days=3 * 365)
    facts = [(None, "LATE-1", member.pk, "completed", Decimal("40"), ordered)]
    with transaction.atomic():
        earned = earn_for_facts(facts, BY, now)["points"]
    member.refresh_from_db()
    assert earned > 0 and member.expired_through == now  # the bulk earn left the mark
    assert balance(member) == earned and list(selectors.find_differences()) == []
    result = services.expire_points(by=BY, now=now + timedelta(minutes=1))
    assert (result.members, result.grants, result.points) == (1, 1, earned)
    assert balance(member) == 0 and list(selectors.find_differences()) == []


def test_points_given_back_to_an_expired_grant_expire_at_the_next_run(member):
    now = timezone.now()
    grant = give(member, 100, "g", expires_in_days=5, now=now)
    spend = services.spend_points(customer_id=member.pk, points=60, key="s", by=BY, now=now)
    later = now + timedelta(days=6)
    assert services.expire_points(by=BY, now=later).points == 40
    # The spend is cancelled after its grant expired: the 60 go back to that grant, with its
    # original (past) expiry, so the next run expires them too; the grant keeps the total.
    services.reverse_entry(entry_id=spend.pk, key="r", by=BY, now=later)
    assert balance(member) == 60
    assert services.expire_points(by=BY, now=later).points == 60
    assert not LedgerEntry.objects.filter(open_grants_q(), pk=grant.pk).exists()
    with transaction.atomic():
        lock_member(member.pk)  # a write settles the mark into the grant
    grant.refresh_from_db()
    assert (grant.remaining, grant.expired, balance(member)) == (0, 100, 0)
    assert list(selectors.find_differences()) == []


def test_a_spend_never_uses_points_past_their_expiry(member):
    give(member, 70, "old", expires_in_days=-1)
    with pytest.raises(LoyaltyError, match="has 0 available"):
        services.spend_points(customer_id=member.pk, points=10, key="s", by=BY)
    # The refused spend wrote nothing (its expiry rolled back with it): the nightly run does.
    assert balance(member) == 70 and list(selectors.find_differences()) == []


def test_adjustments_need_a_reason_and_cannot_make_the_balance_negative(member):
    with pytest.raises(LoyaltyError, match="needs a reason"):
        services.adjust_points(customer_id=member.pk, points=10, reason=" ", key="a", by=BY)
    services.adjust_points(customer_id=member.pk, points=10, reason="goodwill", key="a", by=BY)
    with pytest.raises(LoyaltyError, match="balance negative"):
        services.adjust_points(customer_id=member.pk, points=-11, reason="typo", key="b", by=BY)
    services.adjust_points(customer_id=member.pk, points=-10, reason="typo", key="c", by=BY)
    assert balance(member) == 0


@pytest.mark.parametrize("points", [0, -5, 1.5, "2.5", "x", True, None])
def test_bad_points_are_refused_with_the_reason(member, points):
    with pytest.raises(LoyaltyError, match="points"):
        services.grant_points(customer_id=member.pk, points=points, key="k", by=BY)
    assert balance(member) == 0


def test_unknown_members_and_reused_keys_are_refused(member, programme):
    with pytest.raises(LoyaltyError, match="not a loyalty member"):
        services.spend_points(customer_id=999_999, points=1, key="x", by=BY)
    give(member, 10, "k")
    with pytest.raises(LoyaltyError, match="already used for another operation"):
        services.spend_points(customer_id=member.pk, points=1, key="k", by=BY)


def test_reconcile_names_a_member_whose_stored_balance_drifted(member, capsys):
    from django.core.management import call_command

    give(member, 10, "k")
    type(member).objects.filter(pk=member.pk).update(balance=11)
    with pytest.raises(SystemExit) as exit_info:
        call_command("loyalty", "reconcile")
    assert exit_info.value.code == 2
    assert f"member {member.pk}: stored balance 11, ledger 10" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_the_nightly_run_covers_every_range_once_and_a_rerun_finds_nothing():
    """Ranges of one member each (on PostgreSQL, several connections at once)."""
    services.get_programme()
    now = timezone.now()
    members = [
        services.enroll_member(customer_id=make_customer(f"会员{n}").pk, by=BY) for n in range(7)
    ]
    for n, member in enumerate(members):
        give(member, 10 + n, f"old{n}", expires_in_days=-1, now=now)
        give(member, 5, f"new{n}", expires_in_days=9, now=now)
    result = services.expire_points(by=BY, now=now, range_size=1)
    assert (result.members, result.grants) == (7, 7)
    assert result.points == sum(10 + n for n in range(7))
    assert [balance(m) for m in members] == [5] * 7
    assert services.expire_points(by=BY, now=now, range_size=2).points == 0
    assert list(selectors.find_differences()) == []
    assert LedgerEntry.objects.filter(kind="expire").count() == 7
