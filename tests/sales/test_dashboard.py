"""The dashboard's sales panel: forecast against quota, win rate, pipeline by stage, per role."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from kequn.dashboard.services import refresh_dashboard
from kequn.sales import selectors, services
from kequn.sales.models import Quota, Team
from tests.sales.helpers import SYSTEM, make_deal, make_pipeline, make_rep, stage

pytestmark = pytest.mark.django_db
PANEL = Template("{% load sales_dashboard %}{% sales_panel %}")


def render(user, language: str = "en") -> str:
    request = RequestFactory().get("/admin/")
    request.user = user
    with translation.override(language):
        return PANEL.render(Context({"request": request}))


@pytest.fixture
def team_world():
    """A manager over reps A and B, and rep C in no team; deals closing this month."""
    manager, rep_a, rep_b, rep_c = (
        make_rep("mgr"),
        make_rep("rep-a"),
        make_rep("rep-b"),
        make_rep("rep-c"),
    )
    team = Team.objects.create(name="South", manager=manager)
    team.members.add(rep_a, rep_b)
    pipeline = make_pipeline("Direct")
    make_deal(rep_a, pipeline, "Proposal", "10000", close_in=0)  # best case, 50 %
    make_deal(rep_a, pipeline, "Negotiation", "20000", close_in=0)  # commit, 75 %
    lost = make_deal(rep_a, pipeline, "Qualification", "5000", close_in=0)
    services.move_deal(lost, stage(pipeline, "Lost"), by=SYSTEM, lost_reason="price")
    won = make_deal(rep_b, pipeline, "Negotiation", "30000", close_in=0)
    services.move_deal(won, stage(pipeline, "Won"), by=SYSTEM)
    make_deal(rep_c, pipeline, "Proposal", "50000", close_in=0)
    month = selectors.month_start(won.close_date)
    Quota.objects.create(owner=rep_a, month=month, amount=Decimal(100000))
    Quota.objects.create(owner=rep_b, month=month, amount=Decimal(50000))
    Quota.objects.create(owner=rep_c, month=month, amount=Decimal(999000))
    return manager, rep_a, rep_c


def figures(html: str, period: str) -> dict[str, str]:
    import re

    row = re.search(rf'<tr data-period="{period}">(.*?)</tr>', html, re.S)
    assert row, html
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', row.group(1)))


def test_a_rep_sees_only_their_own_figures(team_world):
    _manager, rep_a, _rep_c = team_world
    panel = selectors.get_dashboard_panel(rep_a)
    month = panel.month
    assert (month.weighted, month.commit, month.best_case, month.won) == (
        15000 + 5000,
        20000,
        30000,
        0,
    )
    assert month.quota == 100000 and month.attainment == 0
    assert (panel.won, panel.lost) == (0, 1)
    assert [(b.label, b.deals, b.revenue) for b in panel.stages] == [
        ("Proposal", 1, 10000),
        ("Negotiation", 1, 20000),
    ]
    html = render(rep_a)
    shown = figures(html, month.period)
    assert shown == {"weighted": "20,000.00", "commit": "20,000.00", "best_case": "30,000.00",
                     "won": "0.00", "quota": "100,000.00", "attainment": "0%"}  # fmt: skip
    assert "0%</strong> (0 won of 1)" in html
    assert "50,000" not in html and "999,000" not in html  # rep C's deal and quota


def test_a_manager_sees_the_team_and_not_other_reps(team_world):
    manager, _rep_a, _rep_c = team_world
    panel = selectors.get_dashboard_panel(manager)
    quarter = panel.quarter
    assert (quarter.weighted, quarter.commit, quarter.best_case, quarter.won) == (
        20000,
        50000,
        60000,
        30000,
    )
    assert quarter.quota == 150000 and quarter.attainment == pytest.approx(0.2)
    assert panel.win_rate == 0.5
    html = render(manager)
    assert figures(html, quarter.period)["attainment"] == "20%"
    assert figures(html, panel.month.period)["won"] == "30,000.00"
    assert "50%</strong> (1 won of 2)" in html
    assert "999,000" not in html and "80,000" not in html
    assert "已关闭 2 个，赢单 1 个" in render(manager, "zh-hans")


def test_the_panel_is_hidden_from_who_may_not_read_deals(team_world):
    assert render(AnonymousUser()).strip() == ""
    agent = make_rep("agent", role="service")  # the service role has no sales grants
    assert render(agent).strip() == ""
    assert "kq-sales-title" in render(make_rep("analyst", role="analyst"))


def test_the_home_page_shows_the_panel_in_the_viewers_scope(team_world):
    from django.test import Client

    manager, rep_a, _rep_c = team_world
    for user, won in ((rep_a, "0.00"), (manager, "30,000.00")):
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(user)
        client.cookies["django_language"] = "en"
        html = client.get("/admin/").content.decode()
        assert 'data-chart="sales"' in html, user
        assert f'data-figure="won">{won}<' in html
    boss = User.objects.create_superuser("boss", password="x")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(boss)
    html = client.get("/admin/").content.decode()  # the dashboard is not computed yet
    assert 'data-testid="empty-state"' in html and html.count('data-chart="sales"') == 1
    refresh_dashboard(by=SYSTEM)
    html = client.get("/admin/").content.decode()  # now inside the dashboard, once
    assert 'class="kq-asof"' in html and html.count('data-chart="sales"') == 1
