"""The survey report by store, product, agent and segment."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.contrib.auth.models import User

from kequn.commerce.models import Channel
from kequn.feedback.models import Response
from kequn.feedback.selectors import get_scores_by
from kequn.feedback.services import create_survey
from kequn.segments.models import Segment, SegmentMember
from kequn.service.services import open_ticket
from tests.factories import make_order
from tests.feedback.conftest import BY, make_customer
from tests.feedback.test_dashboard_panel import answer, role_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey_answers():
    """Four NPS answers: three about orders in two stores, one about a ticket Lin worked."""
    survey = create_survey(name="购物体验", by=BY)
    people = [make_customer(f"b{i}@example.com", name=f"客户{i}") for i in range(4)]
    orders = [make_order(person) for person in people[:3]]
    mall, _ = Channel.objects.get_or_create(code="mall", defaults={"name": "万象城店"})
    orders[2].channel = mall
    orders[2].save(update_fields=["channel"])
    lin = User.objects.create_user("lin", is_staff=True)
    ticket = open_ticket(customer_id=people[3].pk, subject="屏幕", body="碎了", by=BY, assignee=lin)
    for person, score, about in zip(
        people,
        [10, 3, 9, 6],
        [
            f"order:{orders[0].pk}",
            f"order:{orders[1].pk}",
            f"order:{orders[2].pk}",
            f"ticket:{ticket.pk}",
        ],
        strict=True,
    ):
        answer(survey, person, score, about=about)
    vip = Segment.objects.create(name="重要价值客户", rules={})
    SegmentMember.objects.bulk_create(
        SegmentMember(segment=vip, customer=person) for person in people[:2]
    )
    return survey, orders


def test_scores_by_store_product_agent_and_segment(survey_answers):
    survey, orders = survey_answers
    by = get_scores_by(Response.objects.filter(survey=survey))
    stores = {row["label"]: row for row in by["store"]}
    # Online shop: 10 (promoter) and 3 (detractor) -> NPS 0; the mall: one promoter -> 100.
    assert stores["Online shop"]["n"] == 2 and stores["Online shop"]["nps"] == 0.0
    assert stores["万象城店"]["nps"] == 100.0 and stores["万象城店"]["mean"] == 9.0
    assert by["store"][0]["label"] == "Online shop"  # the largest group first
    products = {row["label"]: row["n"] for row in by["product"]}
    assert products == {line.product.name: 1 for o in orders for line in o.lines.all()}
    assert by["agent"] == [
        {"label": "lin", "n": 1, "nps": -100.0, "satisfied_percent": None, "mean": 6.0}
    ]
    assert by["segment"] == [
        {"label": "重要价值客户", "n": 2, "nps": 0.0, "satisfied_percent": None, "mean": 6.5}
    ]


def test_report_page_and_file_show_the_breakdowns(survey_answers):
    survey, _orders = survey_answers
    client = role_client("analyst")
    html = client.get(f"/admin/feedback/survey/{survey.pk}/report/").content.decode()
    assert 'id="kequn-breakdowns"' in html
    for title in ("By store", "By product", "By agent", "By segment"):
        assert title in html
    assert "万象城店" in html and "重要价值客户" in html
    workbook = client.get(f"/admin/feedback/survey/{survey.pk}/report/?format=xlsx")
    assert workbook.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    cells = {str(c.value) for sheet in book.worksheets for row in sheet.iter_rows() for c in row}
    assert "万象城店" in cells and "lin" in cells


def test_breakdowns_read_in_chinese(survey_answers):
    survey, _orders = survey_answers
    client = role_client("analyst")
    client.cookies["django_language"] = "zh-hans"
    html = client.get(
        f"/admin/feedback/survey/{survey.pk}/report/", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    for title in ("按门店", "按商品", "按客服", "按分群", "满意率", "分组"):
        assert title in html
    assert "Satisfied" not in html and "By store" not in html
