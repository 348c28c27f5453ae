"""Export buttons on the customer and order lists: the filtered rows, masked by role, audited."""

from __future__ import annotations

import csv
import gc
import io
import tracemalloc

import openpyxl
import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from kequn.customers.models import Address, Customer, Identity
from kequn.customers.services import create_customer
from kequn.dashboard import list_export
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.security.roles import MARKETING
from tests.conftest import grant

PHONE = "+8613800138000"
EMAIL = "zhang.wei@example.com"


@pytest.fixture
def people(base):
    """Add two Guangdong customers with a phone, an email, an address and a birthday."""
    zhang = create_customer(
        {"name": "张伟", "province": "Guangdong", "city": "Guangzhou"}, by=system_actor("tests")
    )
    Identity.objects.create(customer=zhang, kind="phone", value=PHONE)
    Identity.objects.create(customer=zhang, kind="email", value=EMAIL)
    Address.objects.create(
        customer=zhang, province="Guangdong", city="Guangzhou", line="天河路 1 号", is_default=True
    )
    Customer.objects.filter(pk=zhang.pk).update(birthday="1990-05-17")
    tricky = create_customer(
        {"name": "=HYPERLINK(1)", "province": "Guangdong", "city": "Foshan"},
        by=system_actor("tests"),
    )
    return base, zhang, tricky


@pytest.fixture
def marketer() -> Client:
    """A marketing user allowed to see and export the lists, without unmasking rights."""
    user = User.objects.create_user("mia", password="x", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=MARKETING)[0])
    user = grant(user, "customers.view_customer", "commerce.view_order", list_export.PERMISSION)
    client = Client()
    client.force_login(user)
    return client


def read_csv(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


def exports_logged() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="export").order_by("sequence"))


URL = "/admin/dashboard/export/customers/customer/rows.{}?province=Guangdong"


def test_csv_has_the_filtered_rows_unmasked_for_an_administrator(people, admin_client):
    base, zhang, tricky = people
    rows = read_csv(admin_client.get(URL.format("csv")))
    by_id = {int(r["id"]): r for r in rows}
    # The list's filter applies: Guangdong only (Alice, and the two added here).
    assert set(by_id) == {base.a.pk, zhang.pk, tricky.pk}
    row = by_id[zhang.pk]
    # Places are stored in their canonical short Chinese form.
    assert row["name"] == "张伟" and row["city"] == "广州"
    assert row["phone"] == PHONE and row["email"] == EMAIL
    assert row["birthday"] == "1990-05-17" and "天河路" in row["address"]
    assert by_id[base.a.pk]["rfm_segment"] == "champions"
    # A value that Excel would run as a formula is written as text.
    assert by_id[tricky.pk]["name"] == "'=HYPERLINK(1)"


def test_marketing_gets_personal_fields_masked(people, marketer):
    _, zhang, _ = people
    response = marketer.get(URL.format("csv"))
    assert response.status_code == 200
    row = next(r for r in read_csv(response) if int(r["id"]) == zhang.pk)
    assert row["name"] == "张伟"
    assert row["phone"] == "138****8000" and row["email"] == "z***@example.com"
    assert "13800138000" not in str(row) and EMAIL not in str(row)
    assert row["birthday"] != "1990-05-17" and "天河路" not in row["address"]

    xlsx = b"".join(marketer.get(URL.format("xlsx")).streaming_content)
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    sheet = book.active
    header, *values = list(sheet.iter_rows(values_only=True))
    assert list(header) == list_export.CUSTOMER_COLUMNS
    cells = {v[0]: dict(zip(header, v, strict=True)) for v in values}
    assert cells[zhang.pk]["phone"] == "138****8000"
    assert cells[zhang.pk]["email"] == "z***@example.com"
    assert all(EMAIL not in str(v) and "13800138000" not in str(v) for v in values)


def test_xlsx_has_the_filtered_rows_and_text_not_formulas(people, admin_client):
    base, zhang, tricky = people
    response = admin_client.get(URL.format("xlsx"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="kequn-customer-')
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    header, *values = list(sheet.iter_rows(values_only=True))
    rows = {v[0]: dict(zip(header, v, strict=True)) for v in values}
    assert set(rows) == {base.a.pk, zhang.pk, tricky.pk}
    assert rows[zhang.pk]["phone"] == PHONE
    assert rows[tricky.pk]["name"] == "'=HYPERLINK(1)"  # text, as in the CSV
    formula_cells = [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert formula_cells == []


def test_every_export_is_audited_without_personal_values(people, marketer):
    before = len(exports_logged())
    read_csv(marketer.get(URL.format("csv") + "&q=" + "13800138000"))
    b"".join(marketer.get(URL.format("xlsx")).streaming_content)
    entries = exports_logged()[before:]
    assert [(e.actor_username, e.detail["format"]) for e in entries] == [
        ("mia", "csv"),
        ("mia", "xlsx"),
    ]
    csv_entry = entries[0]
    assert csv_entry.target_type == "customers.customer"
    assert csv_entry.detail["rows"] == 1 and csv_entry.detail["complete"] is True
    assert csv_entry.detail["filters"] == ["province", "q"]
    assert "13800138000" not in str(csv_entry.detail)
    assert entries[1].detail["rows"] == 3
    # The list-column downloads (Excel, PDF) are recorded too.
    marketer.get("/admin/dashboard/export/customers/customer.xlsx?province=Guangdong")
    last = exports_logged()[-1]
    assert (last.detail["format"], last.detail["rows"], last.detail["filters"]) == (
        "xlsx",
        3,
        ["province"],
    )


def test_export_needs_the_permission(people):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    client = Client()
    client.force_login(grant(user, "customers.view_customer"))
    before = len(exports_logged())
    assert client.get(URL.format("csv")).status_code == 403
    assert client.get(URL.format("xlsx")).status_code == 403
    # The by-URL list exports are behind the same permission.
    assert client.get("/admin/dashboard/export/customers/customer.xlsx").status_code == 403
    # The list shows no export buttons without it.
    page = client.get("/admin/customers/customer/").content.decode()
    assert 'data-export="csv"' not in page
    assert len(exports_logged()) == before


def test_list_page_buttons_carry_the_filters(people, marketer):
    page = marketer.get("/admin/customers/customer/?province=Guangdong&q=Zh").content.decode()
    assert (
        'href="/admin/dashboard/export/customers/customer/rows.csv?province=Guangdong&amp;q=Zh"'
        in page
    )
    assert 'data-export="xlsx"' in page
    orders = marketer.get("/admin/commerce/order/?status__exact=completed").content.decode()
    assert (
        'href="/admin/dashboard/export/commerce/order/rows.xlsx?status__exact=completed"' in orders
    )


def test_orders_export(people, marketer):
    base, _, _ = people
    rows = read_csv(
        marketer.get(
            f"/admin/dashboard/export/commerce/order/rows.csv?channel__id__exact={base.web.pk}"
        )
    )
    assert {r["number"] for r in rows} == {"T-1", "T-2", "T-5", "T-6"}
    first = next(r for r in rows if r["number"] == "T-1")
    assert first["customer"] == "Alice" and first["channel"] == "Web shop"
    assert float(first["total_amount"]) == 200 and first["status"] == "completed"
    # A customer restricted on a data-subject request drops out, with their orders.
    Customer.objects.filter(pk=base.a.pk).update(processing_restricted=True)
    url = "/admin/dashboard/export/{}/rows.csv?province=Guangdong"
    assert base.a.pk not in {
        int(r["id"]) for r in read_csv(marketer.get(url.format("customers/customer")))
    }
    rows = read_csv(marketer.get(url.format("commerce/order").replace("province=Guangdong", "")))
    assert {r["number"] for r in rows} == {"T-4", "T-5", "T-6"}


def test_unknown_list_or_format_is_404(people, admin_client):
    assert admin_client.get("/admin/dashboard/export/auth/user/rows.csv").status_code == 404
    assert (
        admin_client.get("/admin/dashboard/export/customers/customer/rows.pdf").status_code == 404
    )


def test_rows_are_read_in_batches_not_all_at_once(people, monkeypatch):
    """A large list is read in keyset batches of ids: memory stays flat as rows grow."""
    monkeypatch.setattr("kequn.segments.export.BATCH", 50)
    Customer.objects.bulk_create(
        [Customer(name=f"Bulk {n}", province="广东") for n in range(1_000)]
    )
    user = User.objects.create_user("reader")
    spec = list_export.get_exportable("customers.customer")
    count = list_export.ExportCount()
    queryset = Customer.objects.filter(province="广东")
    rows = list_export.iter_masked_rows(user, spec, queryset, count)
    tracemalloc.start()
    first = next(rows)
    held = {}
    rest = 0
    for _ in rows:
        rest += 1
        if rest in (100, 1_000):
            # Model instances and their prefetch caches form reference cycles: count only
            # what is still reachable.
            gc.collect()
            held[rest] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert first[1] and rest == 1_002 and count.rows == 1_003 and count.finished
    # Holding all 1,003 customers with their identities and addresses takes about 6 MB here;
    # a batch of 50 well under one, and the tenfold later point holds no more than the first.
    assert held[100] < 1_500_000 and held[1_000] < held[100] + 256 * 1024, held
