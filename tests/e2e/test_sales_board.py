"""The deal board in chromium: drag a card, move one with the keyboard, see a refusal.

A sales rep (the role as it ships) opens the board, drags a deal from Qualification to
Proposal (the column totals follow), moves it on with → from the keyboard, and tries to
drop a deal without an amount on Won: the message says why and the card stays.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from kequn.sales import services
from kequn.sales.models import Deal
from kequn.security.permissions import sync_roles
from kequn.security.roles import SALES
from tests.e2e.conftest import log_in, shoot
from tests.sales.helpers import SYSTEM, in_days, make_account, make_pipeline, stage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "e2e-Rep-word-42"


@pytest.fixture
def board(transactional_db):
    sync_roles()
    rep = User.objects.create_user("lin", password=PASSWORD, is_staff=True)
    rep.groups.add(Group.objects.get(name=SALES))
    pipeline = make_pipeline("新业务")
    deals = {}
    for name, amount in (("华强北门店", "30000"), ("无金额商机", None)):
        deals[name] = services.create_deal(
            services.DealInput(
                name=name,
                account_id=make_account(rep).pk,
                stage_id=stage(pipeline, "Qualification").pk,
                close_date=in_days(20),
                amount=Decimal(amount) if amount else None,
                owner_id=rep.pk,
            ),
            by=SYSTEM,
        )
    return pipeline, deals


def column(page, pipeline, name):
    return page.locator(f'.sales-column[data-stage="{stage(pipeline, name).pk}"]')


def test_drag_keyboard_and_refusal(page, board):
    pipeline, deals = board
    page.set_viewport_size({"width": 1900, "height": 1000})  # every column in view
    log_in(page, "lin", PASSWORD)
    page.goto("/admin/sales/deal/board/")
    qualification, proposal = (
        column(page, pipeline, "Qualification"),
        column(page, pipeline, "Proposal"),
    )
    expect(qualification.locator("[data-total=count]")).to_have_text("2")
    card = page.locator(f'.sales-card[data-deal="{deals["华强北门店"].pk}"]')
    card.drag_to(proposal.locator(".sales-cards"))
    expect(proposal.locator(".sales-card")).to_have_count(1)
    expect(proposal.locator("[data-total=total]")).to_have_text("30000.00")
    expect(proposal.locator("[data-total=weighted]")).to_have_text("15000.00")
    assert Deal.objects.get(pk=deals["华强北门店"].pk).stage.name == "Proposal"
    shoot(page, "sales-board-dragged")

    card.focus()
    page.keyboard.press("ArrowRight")
    negotiation = column(page, pipeline, "Negotiation")
    expect(negotiation.locator(".sales-card")).to_have_count(1)
    assert Deal.objects.get(pk=deals["华强北门店"].pk).stage.name == "Negotiation"

    empty = page.locator(f'.sales-card[data-deal="{deals["无金额商机"].pk}"]')
    empty.drag_to(column(page, pipeline, "Won").locator(".sales-cards"))
    expect(page.locator("#board-message")).to_contain_text("needs its amount")
    expect(qualification.locator(".sales-card")).to_have_count(1)
    assert Deal.objects.get(pk=deals["无金额商机"].pk).status == Deal.Status.OPEN
    shoot(page, "sales-board-refused")
