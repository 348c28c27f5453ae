"""The back office's rule builder: catalogue in words, live count and sample, pickers,
"save as segment" from the customer list, and the member list page."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone, translation

from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.security.roles import MARKETING
from kequn.segments import services
from kequn.segments.catalogue import describe_catalogue
from kequn.segments.models import SegmentMember
from tests.conftest import grant

COUNT = "/admin/segments/segment/count/"


def post_count(client, rule):
    return client.post(COUNT, {"rules": rule}, content_type="application/json")


def test_catalogue_speaks_chinese_with_no_raw_codes(db):
    with translation.override("zh-hans"):
        catalogue = describe_catalogue()
    groups = {g["key"]: g for g in catalogue["groups"]}
    assert groups["score"]["label"] == "评分"
    stage = next(f for f in groups["score"]["fields"] if f["field"] == "lifecycle_stage")
    assert stage["label"] == "生命周期阶段"
    assert {"value": "at_risk", "label": "有流失风险"} in stage["choices"]
    ops = {o["value"]: o["label"] for o in stage["operators"]}
    assert ops["eq"] == "是" and ops["in"] == "是以下之一"
    # Every label a user sees is translated: none is left in English.
    english = [
        text
        for g in catalogue["groups"]
        for f in g["fields"]
        for text in [g["label"], f["label"]] + [o["label"] for o in f["operators"]]
        if text.isascii() and text not in {"RFM", "CLV"}
    ]
    assert english == [] or all(" 分" in t or t.startswith("RFM") for t in english), english
    assert all(not text.isascii() for text in catalogue["texts"].values() if text.strip("%s …"))


def test_new_segment_page_has_no_null_and_no_error(admin_client, shop):
    page = admin_client.get("/admin/segments/segment/add/").content.decode()
    assert "&quot;conditions&quot;: []" in page
    assert ">null</textarea>" not in page
    assert 'id="kequn-rule-catalogue"' in page


def test_saving_a_dynamic_segment_without_conditions_says_so_in_chinese(admin_client, shop):
    admin_client.cookies["django_language"] = "zh-hans"
    response = admin_client.post(
        "/admin/segments/segment/add/",
        {
            "name": "Empty",
            "description": "",
            "kind": "dynamic",
            "rules": '{"match": "all", "conditions": []}',
        },
    )
    assert response.status_code == 200
    assert "请至少添加一个条件" in response.content.decode()


def test_live_count_answers_with_a_masked_sample(admin_client, shop):
    rule = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}
    answer = post_count(admin_client, rule).json()
    assert answer["count"] == 2
    assert [m["name"] for m in answer["sample"]] == ["赵", "王"]
    phones = [m["phone"] for m in answer["sample"]]
    assert all("****" in p for p in phones), phones
    bad = post_count(admin_client, {"match": "all", "conditions": [{"field": "citty"}]}).json()
    assert bad["errors"] == ["rules.conditions[0]: unknown field 'citty'"]
    assert admin_client.post(COUNT, "[1", content_type="application/json").status_code == 400


def test_a_sales_rep_counts_only_their_own_customers(client, shop):
    rep = grant(
        User.objects.create_user("rep", password="x", is_staff=True), "segments.view_segment"
    )
    shop.wang.owner = rep
    shop.wang.save()
    client.force_login(rep)
    rule = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}
    answer = post_count(client, rule).json()
    assert answer["count"] == 1 and [m["name"] for m in answer["sample"]] == ["王"]


@pytest.mark.parametrize(
    ("kind", "query", "expected"),
    [
        ("tag", "VI", [{"value": "VIP", "label": "Value: VIP"}]),
        ("category", "Acc", [{"value": "accessories", "label": "Accessories"}]),
        ("product", "Pho", [{"value": "P-1", "label": "Phone (P-1)"}]),
        ("event", "open", [{"value": "App Opened", "label": "App Opened"}]),
    ],
)
def test_pickers_search_by_name(admin_client, shop, kind, query, expected):
    answer = admin_client.get("/admin/segments/segment/lookup/", {"kind": kind, "q": query})
    assert answer.json()["results"] == expected


def test_picker_refuses_an_unknown_kind(admin_client, shop):
    answer = admin_client.get("/admin/segments/segment/lookup/", {"kind": "users"})
    assert answer.status_code == 400 and "kind 必须是以下之一" in answer.json()["errors"][0]


# --- save as segment ------------------------------------------------------------------


def listed_ids(client, params) -> set[int]:
    response = client.get("/admin/customers/customer/", params)
    assert response.status_code == 200
    return set(response.context["cl"].queryset.values_list("pk", flat=True))


def save_from_list(client, params, name) -> set[int]:
    response = client.get("/admin/segments/segment/from-customers/", params)
    assert response.status_code == 302, response.content
    url = urlsplit(response["Location"])
    assert url.path == "/admin/segments/segment/add/"
    rules = json.loads(parse_qs(url.query)["rules"][0])
    # The add page shows that rule in the form, ready to save.
    page = client.get(response["Location"])
    assert page.context["adminform"].form.initial["rules"] == rules
    saved = client.post(
        "/admin/segments/segment/add/",
        {"name": name, "description": "", "kind": "dynamic", "rules": json.dumps(rules)},
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    segment = services.Segment.objects.get(name=name)
    return set(SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True))


def list_filters(shop):
    today = timezone.localdate().isoformat()
    return [
        {"province": "上海", "tag": str(shop.fan.pk)},
        {"score__lifecycle_stage__exact": "at_risk"},
        {"score__rfm_segment__exact": "champions", "kind__exact": "company"},
        {"score__churn_percentile_from": "5", "score__churn_percentile_to": "50"},
        {"score__clv_from": "1000"},
        {"city": "上海", "gender__exact": "f"},
        {"q": "王"},
        {"created_at_from": today, "o": "2"},
        {"score__r_score__exact": "", "city": "北京"},
    ]


def test_save_as_segment_keeps_exactly_the_filtered_customers(admin_client, shop):
    for i, params in enumerate(list_filters(shop)):
        expected = listed_ids(admin_client, params)
        assert expected, params  # each case lists somebody
        assert save_from_list(admin_client, params, f"From list {i}") == expected, params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"purchase_channel": "1"}, "These filters cannot become a segment rule: purchase_channel"),
        ({"q": "13800138000"}, "cannot become a rule; search by name"),
        ({}, "Filter the customer list first"),
        ({"score__clv_from": "nan"}, "clv: nan is not a number"),
    ],
)
def test_save_as_segment_explains_what_cannot_become_a_rule(admin_client, shop, params, message):
    admin_client.cookies["django_language"] = "en"
    response = admin_client.get("/admin/segments/segment/from-customers/", params, follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/customers/customer/")
    texts = [str(m) for m in response.context["messages"]]
    assert any(message in t for t in texts), texts


def test_customer_list_offers_save_as_segment_with_its_filters(admin_client, shop):
    page = admin_client.get("/admin/customers/customer/", {"city": "上海"}).content.decode()
    assert 'id="kequn-save-as-segment"' in page
    assert "/admin/segments/segment/from-customers/?city=%E4%B8%8A%E6%B5%B7" in page


# --- the member list --------------------------------------------------------------------


@pytest.fixture
def marketer(db):
    user = User.objects.create_user("mia", password="x", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=MARKETING)[0])
    return grant(user, "segments.view_segment", "customers.view_customer")


def test_member_list_is_paged_searchable_masked_and_linked(client, admin_client, shop, marketer):
    everyone = {
        "match": "all",
        "conditions": [{"field": "kind", "operator": "eq", "value": "person"}],
    }
    segment = services.create_segment("People", everyone, by=system_actor("test"))
    url = f"/admin/segments/segment/{segment.pk}/members/"
    change = admin_client.get(f"/admin/segments/segment/{segment.pk}/change/").content.decode()
    assert f'href="{url}"' in change
    client.force_login(marketer)
    page = client.get(url)
    rows = page.context["rows"]
    assert {r["name"] for r in rows} == {"王", "李", "赵", "陈"}
    assert all(r["phone"].count("*") == 4 for r in rows), [r["phone"] for r in rows]
    assert not AuditEntry.objects.filter(action="view_personal").exists()
    found = client.get(url, {"q": "赵"}).context["rows"]
    assert [r["name"] for r in found] == ["赵"]
    # An administrator sees the numbers, and that is on the audit trail.
    admin_rows = admin_client.get(url).context["rows"]
    assert all("*" not in r["phone"] for r in admin_rows)
    assert AuditEntry.objects.filter(action="view_personal", detail__via="segment-members").exists()


def test_member_list_pages_through_every_member(admin_client, shop):
    from kequn.customers.models import Customer

    for n in range(60):
        Customer.objects.create(name=f"Bulk {n:02d}", city="上海")
    segment = services.create_segment(
        "Shanghai",
        {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]},
        by=system_actor("test"),
    )
    url = f"/admin/segments/segment/{segment.pk}/members/"
    first = admin_client.get(url)
    second = admin_client.get(url, {"p": 2})
    assert len(first.context["rows"]) == 50 and len(second.context["rows"]) == 12
    names = {r["name"] for r in first.context["rows"]} | {r["name"] for r in second.context["rows"]}
    assert len(names) == 62 and {"王", "赵"} <= names
    assert 'data-export="csv"' in first.content.decode()


@pytest.mark.parametrize("scan_limit", [10_000, 1])
def test_count_and_sample_agree_with_the_orm_whichever_way_they_are_read(
    shop, monkeypatch, scan_limit
):
    monkeypatch.setattr(services, "SAMPLE_SCAN_LIMIT", scan_limit)
    for rule in (
        {"match": "all", "conditions": [{"field": "kind", "operator": "eq", "value": "person"}]},
        {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "火星"}]},
    ):
        members = services.select_rule_members(rule)
        expected = (members.count(), list(members.order_by("-id").values_list("pk", flat=True)[:2]))
        assert services.count_and_sample_members(rule, 2) == expected
