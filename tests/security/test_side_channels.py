"""No side channels between reps, no write by a read-only role, birth year kept with the birthday.

Each test here failed before the fix it guards: a rep learnt another rep's customer id from an
identity conflict, counted other reps' customers through segments, attached them through
foreign-key fields; the bulk-tag form told which ids exist; an analyst imported a file; a
marketer read birth years through a list filter and segment counts.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from kequn.customers.models import Customer, Tag
from kequn.customers.services import IdentityInput, create_customer
from kequn.ingest.models import ImportRun
from kequn.security.actors import system_actor
from kequn.security.roles import ADMINISTRATOR, ANALYST, MARKETING, SALES
from kequn.security.services import create_api_token
from kequn.segments.models import SegmentSize
from kequn.segments.services import create_segment, get_or_create_tag
from tests.conftest import TokenClient

SHANGHAI = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}
BORN_1990 = {
    "match": "all",
    "conditions": [{"field": "birth_year", "operator": "eq", "value": 1990}],
}


def role_user(role: str, name: str) -> User:
    user = User.objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def api(user: User) -> TokenClient:
    return TokenClient(create_api_token(user.username, by=system_actor("tests"))[1])


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reps(db):
    rep, rival = role_user(SALES, "rep"), role_user(SALES, "rival")
    mine = create_customer(
        {"name": "张伟", "city": "上海"},
        [IdentityInput("phone", "13800138000")],
        by=system_actor("tests"),
    )
    theirs = create_customer(
        {"name": "李娜", "city": "上海", "birthday": "1990-05-04"},
        [IdentityInput("phone", "13900139000")],
        by=system_actor("tests"),
    )
    Customer.objects.filter(pk=mine.pk).update(owner=rep)
    Customer.objects.filter(pk=theirs.pk).update(owner=rival)
    return rep, rival, mine, theirs


def test_identity_conflict_with_an_invisible_customer_names_no_id(reps):
    rep, _rival, mine, theirs = reps
    client = api(rep)
    created = client.send_json(
        "post",
        "/api/v1/customers",
        {"name": "王芳", "identities": [{"kind": "phone", "value": "13900139000"}]},
    )
    assert created.status_code == 422
    detail = " ".join(created.json()["detail"])
    assert "cannot be used" in detail and f"#{theirs.pk}" not in detail
    added = client.send_json(
        "post", f"/api/v1/customers/{mine.pk}/identities", {"kind": "phone", "value": "13900139000"}
    )
    assert added.status_code == 422
    assert f"#{theirs.pk}" not in str(added.json()) and "cannot be used" in str(added.json())
    # Someone who may see that customer is told which one holds the value.
    boss = role_user(ADMINISTRATOR, "boss")
    again = api(boss).send_json(
        "post", f"/api/v1/customers/{mine.pk}/identities", {"kind": "phone", "value": "13900139000"}
    )
    assert f"#{theirs.pk}" in str(again.json())


def test_segment_counts_member_counts_and_history_cover_only_own_accounts(reps):
    rep, _rival, mine, _theirs = reps
    segment = create_segment("上海", SHANGHAI, by=system_actor("test"))
    SegmentSize.objects.create(segment=segment, size=2, entered=2)
    client = api(rep)
    assert client.send_json("post", "/api/v1/segments/count", {"rules": SHANGHAI}).json() == {
        "count": 1
    }
    assert client.get(f"/api/v1/segments/{segment.pk}").json()["member_count"] == 1
    listed = client.get("/api/v1/segments").json()["items"]
    assert [s["member_count"] for s in listed if s["id"] == segment.pk] == [1]
    history = client.get(f"/api/v1/segments/{segment.pk}/history").json()
    assert history["sizes"] == []
    assert {c["customer_id"] for c in history["changes"]} == {mine.pk}
    # The administrator still sees the whole segment.
    boss = api(role_user(ADMINISTRATOR, "boss"))
    assert boss.get(f"/api/v1/segments/{segment.pk}").json()["member_count"] == 2
    assert len(boss.get(f"/api/v1/segments/{segment.pk}/history").json()["sizes"]) >= 1
    # The back-office list shows the rep their own members only.
    page = browser(rep).get(reverse("admin:segments_segment_changelist"))
    row = next(r for r in page.context["cl"].result_list if r.pk == segment.pk)
    column = page.context["cl"].list_display[3]
    assert callable(column) and column(row) == 1


def test_customer_fields_accept_and_show_only_visible_customers(reps):
    rep, _rival, mine, theirs = reps
    client = browser(rep)
    Customer.objects.filter(pk=mine.pk).update(merged_into=theirs)
    page = client.get(reverse("admin:customers_customer_change", args=[mine.pk]))
    assert page.status_code == 200
    assert "李娜" not in page.content.decode()
    Customer.objects.filter(pk=mine.pk).update(merged_into=None)
    form = page.context["adminform"].form
    assert not form.fields["merged_into"].queryset.filter(pk=theirs.pk).exists()
    assert form.fields["merged_into"].queryset.filter(pk=mine.pk).exists()


def test_bulk_tag_form_treats_invisible_ids_as_unknown_and_needs_the_tag_permission(reps):
    rep, _rival, mine, theirs = reps
    client = browser(rep)
    url = reverse("admin:segments_tag_customers")
    existing = get_or_create_tag("回访", by=system_actor("test"))
    ids = f"{mine.pk}\n{theirs.pk}\n987654\n".encode()
    response = client.post(
        url, {"tag": "回访", "file": SimpleUploadedFile("ids.csv", ids)}, follow=True
    )
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    # Another rep's customer is reported exactly like an id that does not exist.
    assert len(warnings) == 1 and f"{theirs.pk}, 987654" in warnings[0], warnings
    assert " 2 " in f" {warnings[0]} "
    assert list(existing.customer_links.values_list("customer_id", flat=True)) == [mine.pk]
    # Sales may tag with existing tags but not create new ones.
    refused = client.post(url, {"tag": "新标签", "file": SimpleUploadedFile("ids.csv", ids)})
    assert refused.status_code == 200 and not Tag.objects.filter(name="新标签").exists()
    assert "新标签" in refused.content.decode()
    # The analyst (read-only) may not open the page at all.
    assert browser(role_user(ANALYST, "ana")).get(url).status_code == 403


def test_the_analyst_cannot_import_and_marketing_can(db):
    analyst = browser(role_user(ANALYST, "ana"))
    upload = {"kind": "customers", "step": "upload"}
    content = "手机,姓名\n13800138000,张伟\n".encode()
    response = analyst.post(
        reverse("admin:ingest_upload"), {**upload, "file": SimpleUploadedFile("c.csv", content)}
    )
    assert response.status_code == 403
    marketer = browser(role_user(MARKETING, "mia"))
    response = marketer.post(
        reverse("admin:ingest_upload"), {**upload, "file": SimpleUploadedFile("c.csv", content)}
    )
    assert response.status_code == 200 and 'name="stored"' in response.content.decode()
    assert not ImportRun.objects.exists() and not Customer.objects.exists()


def test_birth_year_is_part_of_the_birthday_permission(reps):
    marketer = role_user(MARKETING, "mia")
    client = api(marketer)
    counted = client.send_json("post", "/api/v1/segments/count", {"rules": BORN_1990})
    assert counted.status_code == 403 and "birth" in counted.json()["detail"]
    age = {"match": "all", "conditions": [{"field": "age", "operator": "gte", "value": 30}]}
    created = client.send_json("post", "/api/v1/segments", {"name": "30+", "rules": age})
    assert created.status_code == 403
    # Nor through a segment that asks for it.
    boss = role_user(ADMINISTRATOR, "boss")
    born = api(boss).send_json("post", "/api/v1/segments", {"name": "1990", "rules": BORN_1990})
    assert born.status_code == 201
    nested = {
        "match": "all",
        "conditions": [{"field": "in_segment", "operator": "in", "value": born.json()["id"]}],
    }
    assert client.send_json("post", "/api/v1/segments/count", {"rules": nested}).status_code == 403
    assert api(boss).send_json("post", "/api/v1/segments/count", {"rules": BORN_1990}).json() == {
        "count": 1
    }
    # The list filter is refused too (the birthday's year is masked for marketing).
    listing = browser(marketer).get(
        reverse("admin:customers_customer_changelist") + "?birth_year=1990"
    )
    assert listing.status_code == 400
    live = browser(marketer).post(
        reverse("admin:segments_segment_count"),
        {"rules": BORN_1990},
        content_type="application/json",
    )
    assert live.status_code == 403 and "count" not in live.json()
