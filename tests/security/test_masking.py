"""Masking of phone, email, address and birthday: the rules, and every place they apply."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from kequn.customers.models import Address, Customer, Identity
from kequn.customers.services import IdentityInput, create_customer
from kequn.ingest.models import QuarantinedRow
from kequn.security import masking
from kequn.security.actors import system_actor
from kequn.security.roles import ADMINISTRATOR, ANALYST, MARKETING, SALES, SERVICE
from kequn.segments import services as segment_services
from kequn.segments.export import iter_member_rows, mask_personal_fields
from tests.conftest import grant

OPENID = "o6_bmjrPTlm6_2A3n2Ka2Q"


def test_phone_rules():
    assert masking.mask_phone("+8613800138000") == "138****8000"
    assert masking.mask_phone("13800138000") == "138****8000"
    # Other countries keep their prefix digits, never the middle.
    assert masking.mask_phone("+14155550123") == "+14****0123"
    assert masking.mask_phone("12345") == "***45"
    assert masking.mask_phone("") == ""


def test_email_rules():
    assert masking.mask_email("zhang.wei@example.com") == "z***@example.com"
    assert masking.mask_email("a@b.cn") == "a***@b.cn"
    assert masking.mask_email("not-an-email") == "***"


def test_address_and_birthday_rules():
    assert (
        masking.mask_address("广东", "深圳", "南山区", "科技园路 1 号") == "广东 深圳 南山区 ****"
    )
    assert masking.mask_birthday(dt.date(1990, 5, 4)) == "****-05-04"
    assert masking.mask_birthday("1990-05-04") == "****-05-04"
    assert masking.mask_birthday(None) is None
    assert masking.mask_identity_value("wechat", OPENID) == "o6_b****Ka2Q"
    assert masking.mask_identity_value("external", "SF-0031x00000abc") == "SF-0031x00000abc"


@pytest.mark.parametrize(("role", "shown"), [(ANALYST, False), (MARKETING, False), (SERVICE, True)])
def test_wechat_openids_are_masked_with_the_phone(person, role, shown, client: Client):
    Identity.objects.create(customer=person, kind="wechat", system="wx-oa", value=OPENID)
    client.force_login(role_user(role))
    page = client.get(f"/admin/customers/customer/{person.pk}/360/").content.decode()
    assert (OPENID in page) is shown
    assert ("o6_b****Ka2Q" in page) is not shown


@pytest.fixture
def person(db) -> Customer:
    customer = create_customer(
        {"name": "张伟", "city": "深圳", "province": "广东", "birthday": dt.date(1990, 5, 4)},
        [IdentityInput("phone", "13800138000"), IdentityInput("email", "zhang.wei@example.com")],
        by=system_actor("tests"),
    )
    Address.objects.create(
        customer=customer,
        province="广东",
        city="深圳",
        district="南山区",
        line="科技园路 1 号",
        postcode="518057",
    )
    return customer


def role_user(role: str, name: str = "") -> User:
    user = User.objects.create_user(name or f"{role}-user", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            ADMINISTRATOR,
            (
                "+8613800138000",
                "zhang.wei@example.com",
                "广东 深圳 南山区 科技园路 1 号",
                "1990-05-04",
            ),
        ),
        (MARKETING, ("138****8000", "z***@example.com", "广东 深圳 南山区 ****", "****-05-04")),
        (ANALYST, ("138****8000", "z***@example.com", "广东 深圳 南山区 ****", "****-05-04")),
        (
            SERVICE,
            ("+8613800138000", "zhang.wei@example.com", "广东 深圳 南山区 ****", "****-05-04"),
        ),
    ],
)
def test_export_rows_are_masked_by_role(person, role, expected):
    segment = segment_services.create_segment(
        "All", kind="static", customer_ids=[person.pk], by=system_actor("test")
    )
    [row] = [mask_personal_fields(role_user(role), r) for r in iter_member_rows(segment)]
    assert (row["phone"], row["email"], row["address"], row["birthday"]) == expected
    assert "address_parts" not in row


def test_a_single_permission_unmasks_a_single_group(person):
    user = grant(
        User.objects.create_user("emailonly", password="x"), "customers.view_customer_email"
    )
    assert masking.get_unmasked_groups(user) == {"email"}
    row = mask_personal_fields(user, {"phone": "+8613800138000", "email": "a@b.cn"})
    assert row == {"phone": "138****8000", "email": "a@b.cn"}
    user.is_active = False
    assert masking.get_unmasked_groups(user) == frozenset()


def test_segment_csv_export_as_sales_rep_has_own_members_unmasked(person, client: Client):
    rep = role_user(SALES, "rep")
    theirs = create_customer(
        {"name": "李娜"}, [IdentityInput("phone", "13900139000")], by=system_actor("tests")
    )
    Customer.objects.filter(pk=person.pk).update(owner=rep)
    segment = segment_services.create_segment(
        "Both", kind="static", customer_ids=[person.pk, theirs.pk], by=system_actor("test")
    )
    client.force_login(rep)
    response = client.get(f"/admin/segments/segment/{segment.pk}/export/csv/")
    assert response.status_code == 200, response.content[:300]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in rows] == ["张伟"]
    assert rows[0]["phone"] == "+8613800138000"
    assert "13900139000" not in text


@pytest.fixture
def quarantined(db, tmp_path):
    from kequn.ingest.runs import import_file

    path = tmp_path / "people.csv"
    path.write_text(
        "会员编号,姓名,手机号,邮箱,生日\n"
        "m1,周杰,13700001111,zhou.jie@,1988年7月21日\n",  # a malformed email: quarantined
        encoding="utf-8",
    )
    import_file(path, "customers", source="crm", by=system_actor("tests"))
    return QuarantinedRow.objects.get()


def test_quarantined_rows_are_masked_for_roles_without_unmasking(quarantined, client: Client):
    client.force_login(role_user(MARKETING))
    client.cookies["django_language"] = "en"
    base = "/admin/ingest/quarantinedrow/"
    listing = client.get(base).content.decode()
    change = client.get(f"{base}{quarantined.pk}/change/").content.decode()
    export = client.post(base, {"action": "export_csv", "_selected_action": [quarantined.pk]})
    exported = export.content.decode("utf-8-sig")
    for text in (listing, change, exported):
        assert "zhou.jie@" not in text and "13700001111" not in text and "1988" not in text
    assert "137****1111" in exported and "z***@" in exported and "周杰" in exported
    assert "hidden from your role" in exported
    # What one may not see, one cannot fix: the values are read-only.
    client.post(f"{base}{quarantined.pk}/change/", {"values": '{"邮箱": "x@y.cn"}'})
    quarantined.refresh_from_db()
    assert quarantined.values["邮箱"] == "zhou.jie@"


def test_quarantined_rows_are_whole_for_the_administrator(quarantined, client: Client):
    client.force_login(role_user(ADMINISTRATOR))
    base = "/admin/ingest/quarantinedrow/"
    export = client.post(base, {"action": "export_csv", "_selected_action": [quarantined.pk]})
    assert "zhou.jie@" in export.content.decode("utf-8-sig")


def test_analysts_see_the_quarantine_but_cannot_retry_or_discard(quarantined, client: Client):
    client.force_login(role_user(ANALYST))
    base = "/admin/ingest/quarantinedrow/"
    assert client.get(base).status_code == 200
    client.post(base, {"action": "discard_rows", "_selected_action": [quarantined.pk]})
    quarantined.refresh_from_db()
    assert quarantined.status == QuarantinedRow.Status.OPEN


def test_review_queue_masks_birthdays_and_identities_but_still_marks_differences(
    person, client: Client
):
    from kequn.ingest.models import MatchCandidate

    other = create_customer(
        {"name": "张伟", "birthday": dt.date(1990, 4, 5)},
        [IdentityInput("phone", "13900139000")],
        by=system_actor("tests"),
    )
    pair = MatchCandidate.objects.create(left=person, right=other, score=0.8)
    url = f"/admin/ingest/matchcandidate/{pair.pk}/change/"
    client.force_login(role_user(MARKETING))
    page = client.get(url).content.decode()
    assert "1990-05-04" not in page and "13900139000" not in page
    assert "****-05-04" in page and "139****9000" in page and "⚠" in page
    client.force_login(role_user(ADMINISTRATOR))
    assert "1990-05-04" in client.get(url).content.decode()
