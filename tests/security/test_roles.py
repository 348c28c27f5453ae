"""Roles: the groups and their permissions, user management, and the per-object and per-field
checks in the back office and the API (a sales rep sees only own accounts, ids cannot be probed).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from kequn.customers.models import Address, Customer
from kequn.customers.services import IdentityInput, create_customer
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.security.audit.services import VIEW_PERSONAL
from kequn.security.permissions import sync_roles
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, ROLES, SALES, SERVICE
from kequn.security.services import create_api_token
from kequn.segments.services import get_or_create_tag, tag_customer_ids
from tests.conftest import TokenClient
from tests.factories import make_order

UNMASK = {
    "customers.view_customer_phone",
    "customers.view_customer_email",
    "customers.view_customer_address",
    "customers.view_customer_birthday",
}


def perms_of(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


# --- the matrix -------------------------------------------------------------------------


def test_every_role_exists_with_its_documented_permissions(db):
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)
    admin = perms_of(ADMINISTRATOR)
    assert set(Permission.objects.values_list("content_type__app_label", "codename")) == {
        tuple(p.split(".")) for p in admin
    }
    # The audit trail, the security alerts and the campaigns' reports (consent compliance).
    assert perms_of(AUDITOR) == {
        "audit.view_auditentry", "monitoring.view_alert", "engage.view_campaign", "engage.view_run",
    }  # fmt: skip
    analyst = perms_of(ANALYST)
    assert not analyst & UNMASK
    assert "customers.view_all_customers" in analyst
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in analyst)
    marketing = perms_of(MARKETING)
    assert not marketing & UNMASK
    assert not any(p.startswith("auth.") for p in marketing)
    assert {"segments.add_segment", "customers.add_customertag"} <= marketing
    sales = perms_of(SALES)
    assert sales >= UNMASK
    assert "customers.view_all_customers" not in sales
    service = perms_of(SERVICE)
    assert service & UNMASK == {"customers.view_customer_phone", "customers.view_customer_email"}
    assert {"customers.add_consent", "customers.add_customertag"} <= service


def test_sync_is_idempotent_and_repairs_a_group_edited_by_hand(db):
    first = sync_roles()
    group = Group.objects.get(name=ANALYST)
    group.permissions.add(Permission.objects.get(codename="view_customer_phone"))
    group.permissions.remove(Permission.objects.get(codename="view_order"))
    assert sync_roles() == first
    assert "customers.view_customer_phone" not in perms_of(ANALYST)
    assert "commerce.view_order" in perms_of(ANALYST)


# --- users on the command line ------------------------------------------------------------


def test_user_add_prints_a_password_once_and_role_changes(db, capsys):
    call_command("user", "add", "wang", "--role", SALES, "--email", "wang@example.com")
    out, err = capsys.readouterr()
    password = out.strip()
    assert len(password) >= 12 and "not shown again" in err
    user = User.objects.get(username="wang")
    assert user.check_password(password) and user.is_staff and user.email == "wang@example.com"
    assert list(user.groups.values_list("name", flat=True)) == [SALES]
    call_command("user", "role", "wang", SERVICE)
    assert list(User.objects.get(username="wang").groups.values_list("name", flat=True)) == [
        SERVICE
    ]
    call_command("user", "list")
    assert "wang\tservice" in capsys.readouterr().out


def test_user_commands_refuse_bad_input_in_one_line(db):
    call_command("user", "add", "li", "--role", ANALYST)
    with pytest.raises(CommandError, match="already exists"):
        call_command("user", "add", "li", "--role", ANALYST)
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("user", "role", "nobody", SALES)
    with pytest.raises(CommandError, match="unknown role"):
        call_command("roles", "show", "janitor")


def test_roles_sync_and_show(db, capsys):
    call_command("roles", "sync")
    assert f"{AUDITOR}\t4 permissions" in capsys.readouterr().out
    call_command("roles", "show", AUDITOR)
    assert sorted(capsys.readouterr().out.split()) == [
        "audit.view_auditentry", "engage.view_campaign", "engage.view_run", "monitoring.view_alert",
    ]  # fmt: skip


# --- per object and per field -------------------------------------------------------------


def role_user(role: str, name: str) -> User:
    user = User.objects.create_user(name, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def person(name: str, phone: str, owner: User | None = None) -> Customer:
    customer = create_customer(
        {"name": name, "city": "深圳", "province": "广东", "birthday": dt.date(1990, 5, 4)},
        [IdentityInput("phone", phone), IdentityInput("email", f"{phone}@example.com")],
        by=system_actor("tests"),
    )
    Address.objects.create(
        customer=customer, province="广东", city="深圳", district="南山区", line="科技园路 1 号"
    )
    Customer.objects.filter(pk=customer.pk).update(owner=owner)
    return customer


@pytest.fixture
def world(db):
    rep = role_user(SALES, "rep")
    rival = role_user(SALES, "rival")
    mine = person("张伟", "13800138000", rep)
    theirs = person("李娜", "13900139000", rival)
    return rep, rival, mine, theirs


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_sales_changelist_and_order_list_show_only_own_accounts(world):
    rep, _rival, mine, theirs = world
    make_order(mine)
    make_order(theirs)
    client = logged_in(rep)
    listing = client.get(reverse("admin:customers_customer_changelist"))
    assert listing.status_code == 200
    shown = [c.pk for c in listing.context["cl"].result_list]
    assert shown == [mine.pk]
    orders = client.get(reverse("admin:commerce_order_changelist")).context["cl"].result_list
    assert [o.customer_id for o in orders] == [mine.pk]
    # Searching another rep's phone finds nothing either.
    found = client.get(reverse("admin:customers_customer_changelist"), {"q": "13900139000"})
    assert list(found.context["cl"].result_list) == []


def test_sales_cannot_open_another_reps_customer(world):
    rep, _rival, _mine, theirs = world
    client = logged_in(rep)
    page_360 = client.get(reverse("admin:customers_customer_360", args=[theirs.pk]))
    assert page_360.status_code == 404
    change = client.get(reverse("admin:customers_customer_change", args=[theirs.pk]))
    # The admin answers a missing object by going back to the index; no content leaks.
    assert change.status_code == 302
    assert "李娜" not in change.content.decode()


def test_360_page_unmasked_for_own_account_is_audited(world):
    rep, _rival, mine, _theirs = world
    page = logged_in(rep).get(reverse("admin:customers_customer_360", args=[mine.pk]))
    html = page.content.decode()
    assert "+8613800138000" in html and "科技园路 1 号" in html and "1990年5月4日" in html
    entry = AuditEntry.objects.get(action=VIEW_PERSONAL, actor_id=rep.pk)
    assert entry.target_id == str(mine.pk)
    assert entry.detail == {"via": "360", "fields": ["phone", "email", "address", "birthday"]}


def test_360_page_and_change_view_are_masked_for_marketing(world):
    _rep, _rival, mine, _theirs = world
    marketer = role_user(MARKETING, "mia")
    client = logged_in(marketer)
    html = client.get(reverse("admin:customers_customer_360", args=[mine.pk])).content.decode()
    assert "138****8000" in html and "13800138000" not in html
    assert "1***@example.com" in html and "13800138000@example.com" not in html
    assert "广东 深圳 南山区 ****" in html and "科技园路" not in html
    assert "****-05-04" in html and "1990" not in html
    change = client.get(reverse("admin:customers_customer_change", args=[mine.pk]))
    assert change.status_code == 200
    html = change.content.decode()
    assert "13800138000" not in html and "138****8000" in html
    assert "科技园路" not in html and "1990-05-04" not in html and "****-05-04" in html
    # Nothing unmasked was shown, so nothing is recorded as a view of personal data.
    assert not AuditEntry.objects.filter(action=VIEW_PERSONAL, actor_id=marketer.pk).exists()


def test_service_change_view_shows_contact_fields_but_not_address_or_birthday(world):
    _rep, _rival, mine, _theirs = world
    agent = role_user(SERVICE, "sam")
    client = logged_in(agent)
    url = reverse("admin:customers_customer_change", args=[mine.pk])
    html = client.get(url).content.decode()
    assert "+8613800138000" in html and "13800138000@example.com" in html
    assert "科技园路" not in html and "1990-05-04" not in html
    # The masked birthday is read-only: a posted birthday is ignored.
    form = client.get(url).context["adminform"].form
    assert "birthday" not in form.fields
    entries = AuditEntry.objects.filter(action=VIEW_PERSONAL, actor_id=agent.pk)
    assert entries.count() == 2  # one per opening of the page
    assert {e.target_id for e in entries} == {str(mine.pk)}
    assert entries.first().detail == {"via": "admin", "fields": ["phone", "email"]}


def api_client(user: User) -> TokenClient:
    _, token = create_api_token(user.username, by=system_actor("tests"))
    return TokenClient(token)


def test_api_id_probing_gets_the_same_404_as_a_missing_id(world):
    rep, _rival, mine, theirs = world
    order = make_order(theirs)
    api = api_client(rep)
    missing = api.get("/api/v1/customers/987654321")
    probed = api.get(f"/api/v1/customers/{theirs.pk}")
    assert probed.status_code == missing.status_code == 404
    assert probed.json() == missing.json()
    for path in [
        f"/api/v1/customers/{theirs.pk}/totals",
        f"/api/v1/orders/{order.pk}",
        f"/api/v1/recommendations/customers/{theirs.pk}",
    ]:
        assert api.get(path).status_code == 404, path
    assert (
        api.send_json("patch", f"/api/v1/customers/{theirs.pk}", {"city": "x"}).status_code == 404
    )
    assert api.get(f"/api/v1/orders?customer_id={theirs.pk}").json()["items"] == []
    lookup = api.get("/api/v1/customers/lookup", {"kind": "phone", "value": "13900139000"})
    assert lookup.status_code == 404
    theirs.refresh_from_db()
    assert theirs.city == "深圳"  # the refused PATCH changed nothing
    own = api.get(f"/api/v1/customers/{mine.pk}").json()
    assert {i["kind"]: i["value"] for i in own["identities"]}["phone"] == "+8613800138000"


def test_a_customer_created_by_a_sales_rep_is_theirs(world):
    rep, *_ = world
    api = api_client(rep)
    created = api.send_json("post", "/api/v1/customers", {"name": "新客户"})
    assert created.status_code == 201
    assert Customer.objects.get(pk=created.json()["id"]).owner_id == rep.pk
    assert api.get(f"/api/v1/customers/{created.json()['id']}").status_code == 200


def test_view_all_customers_widens_a_reps_scope(world):
    rep, _rival, mine, theirs = world
    rep.user_permissions.add(Permission.objects.get(codename="view_all_customers"))
    api = api_client(User.objects.get(pk=rep.pk))
    ids = {c["id"] for c in api.get("/api/v1/customers").json()["items"]}
    assert ids == {mine.pk, theirs.pk}


def test_auditor_sees_the_trail_but_no_customer(world):
    auditor = role_user(AUDITOR, "aud")
    client = logged_in(auditor)
    assert client.get(reverse("admin:customers_customer_changelist")).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_changelist")).status_code == 200
    assert api_client(auditor).get("/api/v1/customers").status_code == 403


def test_a_customer_a_rep_adds_in_the_back_office_is_theirs(world):
    rep, *_ = world
    client = logged_in(rep)
    url = reverse("admin:customers_customer_add")
    form = client.get(url).context["adminform"].form
    data = dict.fromkeys(form.fields, "")
    data.update({"kind": "person", "name": "王芳", "country": "CN"})
    for inline in client.get(url).context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Customer.objects.get(name="王芳").owner_id == rep.pk


def test_bulk_tagging_by_a_sales_rep_skips_other_reps_accounts(world):
    rep, _rival, mine, theirs = world
    tag = get_or_create_tag("回访", by=system_actor("test"))
    assert tag_customer_ids(tag, [mine.pk, theirs.pk], by=rep) == 1
    assert list(tag.customer_links.values_list("customer_id", flat=True)) == [mine.pk]
    # System jobs (tag rules) have no user and tag everyone they are given.
    assert tag_customer_ids(tag, [theirs.pk], by=system_actor("test")) == 1
