"""Bad input at every door: tokens, session cookies, API text fields, the importer, exports.

Each attempt must end in a clear 4xx / validation error or be stored verbatim (and shown
escaped); nothing may be stored half-way, and nothing may answer 500 — on SQLite and
PostgreSQL alike (they differ on NUL characters and string lengths).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from kequn.customers.models import Customer, Identity
from kequn.ingest.models import QuarantinedRow
from kequn.ingest.quarantine import write_quarantine_csv
from kequn.security.actors import system_actor
from kequn.security.formulas import escape_formula
from kequn.security.models import ApiToken
from kequn.security.services import create_api_token
from kequn.segments.models import Segment
from tests.conftest import TokenClient
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_lockout_bookkeeping(settings):
    """Skip django-axes here: force_login has no client address, and lockout is tested apart."""
    settings.AXES_ENABLED = False


SQL_INJECTIONS = ["' OR 1=1 --", '"; DROP TABLE customers_customer; --', "1; SELECT pg_sleep(5)"]
SCRIPT = "<script>alert(1)</script>"
ATTACKS = [*SQL_INJECTIONS, SCRIPT, 'x" onmouseover="alert(1)', "a\x00b"]
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]

# Text fields of POST /api/v1/customers with their length limits.
CUSTOMER_TEXT_FIELDS = {
    "name": 200,
    "age_band": 16,
    "income_band": 16,
    "occupation": 100,
    "industry": 100,
    "country": 2,
    "province": 50,
    "city": 50,
    "source_channel": 50,
    "external_ref": 100,
}


def assert_one_line_error(response, status: int) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- tokens and sessions ------------------------------------------------------------------


@pytest.fixture
def viewer(db) -> User:
    from tests.conftest import grant

    return grant(User.objects.create_user("viewer", password="x"), "customers.view_customer")


def test_expired_revoked_wrong_and_malformed_tokens_get_one_line_401(viewer):
    _, expired = create_api_token(
        "viewer", expires_at=timezone.now() - timedelta(seconds=1), by=system_actor("tests")
    )
    record, revoked = create_api_token("viewer", by=system_actor("tests"))
    ApiToken.objects.filter(pk=record.pk).update(revoked=True)
    _, good = create_api_token("viewer", by=system_actor("tests"))
    assert TokenClient(good).get("/api/v1/customers").status_code == 200
    headers = [
        f"Bearer {expired}",
        f"Bearer {revoked}",
        "Bearer kq_" + "A" * 43,  # well-formed, unknown
        f"Bearer {good[:-1]}",  # one character short
        "Bearer not-a-kequn-token",
        "Bearer " + "kq_" + "x" * 5000,  # over-long
        "Bearer",
        "Bearer ",
        f"Token {good}",
        f"Basic {good}",
        f"Bearer {good} extra",
        "Bearer ' OR 1=1 --",
        "Bearer kq_\u4e2d\u6587",
    ]
    for header in headers:
        response = Client().get("/api/v1/customers", HTTP_AUTHORIZATION=header)
        text = assert_one_line_error(response, 401)
        assert "authentication required" in text, header
        assert "token" in text, header


def test_tampered_session_cookie_is_anonymous(admin_client):
    assert admin_client.get("/api/v1/customers").status_code == 200
    session_key = admin_client.cookies["sessionid"].value
    tampered = [
        session_key[:-1] + ("a" if session_key[-1] != "a" else "b"),
        session_key[::-1],
        "x" * 4000,
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        # UTF-8 bytes arrive from the server as latin-1 text (PEP 3333).
        "\u4e2d\u6587".encode().decode("latin-1"),
    ]
    for value in tampered:
        client = Client()
        client.cookies["sessionid"] = value
        assert_one_line_error(client.get("/api/v1/customers"), 401)
        response = client.get("/admin/customers/customer/")
        assert response.status_code == 302, value
        assert response["Location"].startswith(reverse("admin:login"))


# --- API text fields ----------------------------------------------------------------------


def test_attacks_in_every_customer_text_field_are_refused_or_stored_verbatim(make_api_client):
    client = make_api_client(superuser=True)
    for field, limit in CUSTOMER_TEXT_FIELDS.items():
        values = [*ATTACKS, "y" * (limit + 1), "z" * 100_000]
        for value in values:
            customers, identities = Customer.objects.count(), Identity.objects.count()
            payload = {
                field: value,
                "identities": [{"kind": "email", "value": f"p{customers}@example.com"}],
            }
            response = client.send_json("post", "/api/v1/customers", payload)
            assert response.status_code in (201, 422), (field, value[:40], response.content[:200])
            if response.status_code == 201:
                stored = Customer.objects.get(pk=response.json()["id"])
                assert getattr(stored, field) == value, (field, value)
                assert len(value) <= limit and "\x00" not in value
            else:
                assert_one_line_error(response, 422)
                assert (Customer.objects.count(), Identity.objects.count()) == (
                    customers,
                    identities,
                ), f"half-stored after refusing {field}={value[:40]!r}"


def test_attacks_in_identities_and_a_bad_identity_leave_nothing_half_stored(make_api_client):
    client = make_api_client(superuser=True)
    for kind in ("email", "phone", "wechat", "external"):
        for value in [*ATTACKS, "9" * 256, "w" * 100_000]:
            before = (Customer.objects.count(), Identity.objects.count())
            payload = {
                "name": "Half",
                "identities": [
                    {"kind": "email", "value": "first@example.com"},
                    {"kind": kind, "value": value, "system": "crm"},
                ],
            }
            response = client.send_json("post", "/api/v1/customers", payload)
            assert response.status_code in (201, 422), (kind, value[:40], response.content[:200])
            if response.status_code == 201:
                # Accepted (e.g. a WeChat id): stored exactly as sent; undo for the next round.
                customer = Customer.objects.get(pk=response.json()["id"])
                assert value in [i.value for i in customer.identities.filter(kind=kind)]
                customer.delete()
            else:
                assert_one_line_error(response, 422)
                after = (Customer.objects.count(), Identity.objects.count())
                assert after == before, f"half-stored after refusing {kind}={value[:40]!r}"

    target = make_customer()
    for value in [*ATTACKS, "e" * 300]:
        response = client.send_json(
            "post", f"/api/v1/customers/{target.pk}/identities", {"kind": "email", "value": value}
        )
        assert_one_line_error(response, 422)
    assert target.identities.count() == 0


def test_attacks_in_customer_patch_and_lookup(make_api_client):
    client = make_api_client(superuser=True)
    customer = make_customer(name="Before")
    for value in [*ATTACKS, "n" * 201]:
        response = client.send_json("patch", f"/api/v1/customers/{customer.pk}", {"name": value})
        customer.refresh_from_db()
        if response.status_code == 200:
            assert customer.name == value
        else:
            assert_one_line_error(response, 422)
            assert customer.name != value
    for value in ATTACKS:
        for url in (
            f"/api/v1/customers/lookup?kind=email&value={value}",
            f"/api/v1/customers?q={value}",
            f"/api/v1/products?q={value}",
            f"/api/v1/events?name={value}",
        ):
            response = client.get(url)
            assert response.status_code in (200, 404, 422), (url, response.content[:200])
    # The injection did not widen the search: a name filter with ' OR 1=1 matches nobody.
    assert client.get("/api/v1/customers?q=' OR 1=1 --").json()["items"] == []


def test_attacks_in_segment_fields_and_rules(make_api_client):
    client = make_api_client(superuser=True)
    rule = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}
    for value in [*ATTACKS, "s" * 201]:
        before = Segment.objects.count()
        for payload in (
            {"name": value, "rules": rule},
            {"name": f"desc {before}", "description": value, "rules": rule},
            {
                "name": f"rule {before}",
                "rules": {
                    "match": "all",
                    "conditions": [{"field": "city", "operator": "eq", "value": value}],
                },
            },
            {
                "name": f"field {before}",
                "rules": {
                    "match": "all",
                    "conditions": [{"field": value, "operator": "eq", "value": "x"}],
                },
            },
        ):
            response = client.send_json("post", "/api/v1/segments", payload)
            assert response.status_code in (201, 422), (payload, response.content[:200])
            if response.status_code == 201:
                stored = Segment.objects.get(pk=response.json()["id"])
                assert stored.name == payload["name"]
                assert stored.description == payload.get("description", "")
                assert stored.rules == payload["rules"]
                stored.delete()
            else:
                assert_one_line_error(response, 422)
                assert Segment.objects.count() == before
        count = client.send_json("post", "/api/v1/segments/count", {"rules": rule | {"x": value}})
        assert count.status_code in (200, 422)


def test_nul_characters_are_refused_the_same_way_on_every_database(make_api_client):
    client = make_api_client(superuser=True)
    response = client.send_json(
        "post", "/api/v1/customers", {"name": "nul\x00name", "identities": []}
    )
    assert "body.name contains a NUL character" in assert_one_line_error(response, 422)
    response = client.get("/api/v1/customers?q=a%00b")
    assert "query.q contains a NUL character" in assert_one_line_error(response, 422)
    assert not Customer.objects.exists()


def test_script_in_a_name_is_shown_escaped_in_the_back_office(make_api_client, admin_client):
    client = make_api_client(superuser=True)
    response = client.send_json(
        "post",
        "/api/v1/customers",
        {"name": SCRIPT, "city": 'x" onmouseover="alert(1)', "identities": []},
    )
    assert response.status_code == 201
    customer_id = response.json()["id"]
    pages = [
        reverse("admin:customers_customer_change", args=[customer_id]),
        reverse("admin:customers_customer_360", args=[customer_id]),
        reverse("admin:customers_customer_changelist"),
    ]
    for url in pages:
        page = admin_client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert SCRIPT not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
        assert 'onmouseover="alert(1)' not in html, url


# --- the importer -------------------------------------------------------------------------


def _import(tmp_path, text: str) -> dict:
    path = tmp_path / "attack.csv"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    call_command("import", "customers", str(path), "--json", stdout=out)
    return json.loads(out.getvalue())


IMPORT_COLUMNS = [
    "external_id", "email", "phone", "wechat", "name", "gender", "birthday", "country",
    "province", "city", "district", "address", "postcode", "occupation", "industry", "company",
]  # fmt: skip


@pytest.mark.parametrize("column", IMPORT_COLUMNS)
def test_import_attacks_in_every_column_are_quarantined_or_stored_verbatim(tmp_path, column):
    values = [*SQL_INJECTIONS, SCRIPT, *FORMULAS, "L" * 300]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    id_column = "email" if column != "email" else "external_id"
    writer.writerow([id_column, column] if column != id_column else [column])
    for n, value in enumerate(values):
        writer.writerow([f"row{n}@example.com" if id_column == "email" else f"R{n}", value])
    summary = _import(tmp_path, buffer.getvalue())
    assert summary["rows_read"] == len(values)
    assert summary["inserted"] + summary["quarantined"] == len(values)
    for quarantined in QuarantinedRow.objects.all():
        assert 2 <= quarantined.row_number <= len(values) + 1
        assert quarantined.reason and quarantined.message
        assert quarantined.field, quarantined.message
    # Whatever was stored is the text that was sent (no SQL ran, nothing was cut short).
    if column in ("name", "occupation", "industry"):
        stored = set(Customer.objects.values_list(column, flat=True))
        quarantined_rows = {q.row_number for q in QuarantinedRow.objects.all()}
        for n, value in enumerate(values):
            if n + 2 not in quarantined_rows:
                assert value in stored, (column, value)
    assert Customer.objects.filter(name="").count() <= len(values)


# --- exports ------------------------------------------------------------------------------


def test_escape_formula_follows_owasp():
    for value in FORMULAS:
        assert escape_formula(value) == "'" + value
    for value in ("=1", "\t=1", "\r=1", "＝1"):
        assert escape_formula(value).startswith("'")
    for value in ("+8613800138000", "-12.5", "plain", "", 42, None, "a=b"):
        assert escape_formula(value) == value


def _formula_customers():
    from tests.factories import make_customer as make

    return [make(name=value, city=value) for value in FORMULAS]


def test_segment_csv_and_xlsx_exports_neutralise_formulas(make_api_client):
    from kequn.segments.services import set_static_members

    customers = _formula_customers()
    segment = Segment.objects.create(name="formulas", kind=Segment.Kind.STATIC, rules={})
    set_static_members(segment, [c.pk for c in customers], by=system_actor("test"))
    client = make_api_client(superuser=True)

    response = client.get(f"/api/v1/segments/{segment.pk}/export?format=csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["name"] for row in rows) == sorted("'" + v for v in FORMULAS)
    assert all(row["city"].startswith("'") for row in rows)

    response = client.get(f"/api/v1/segments/{segment.pk}/export?format=xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    cells = [cell for row in book.active.iter_rows(min_row=2) for cell in row]
    texts = [c.value for c in cells if isinstance(c.value, str) and c.value.lstrip("'")]
    assert not [c for c in cells if c.data_type == "f"], "a cell became a formula"
    for value in FORMULAS:
        assert "'" + value in texts


def test_dashboard_and_quarantine_exports_neutralise_formulas(tmp_path):
    from kequn.dashboard.exports import build_list_xlsx

    book = load_workbook(io.BytesIO(build_list_xlsx("list", ["name"], [[v] for v in FORMULAS])))
    values = [row[0].value for row in book.active.iter_rows(min_row=2)]
    assert values == ["'" + v for v in FORMULAS]
    assert all(row[0].data_type == "s" for row in book.active.iter_rows(min_row=2))

    text = "email,name\n" + "".join(f"bad{n},{v}\n" for n, v in enumerate(["=1+1", "@SUM(A1)"]))
    _import(tmp_path, text.replace(",=1+1", ',"=1+1"'))
    out = io.StringIO()
    assert write_quarantine_csv(QuarantinedRow.objects.order_by("row_number"), out) == 2
    for row in list(csv.reader(io.StringIO(out.getvalue())))[1:]:
        assert not any(cell.startswith(("=", "+", "@")) for cell in row), row


# --- control characters (issue 14, item 6) -------------------------------------------------

CONTROLS = "\x01\x07\x1b\x7f\x85\x9f"


def test_control_characters_are_cleaned_on_the_way_in(make_api_client, tmp_path):
    from kequn.customers.services import update_customer
    from kequn.events.models import Event
    from kequn.events.services import create_source

    client = make_api_client(superuser=True)
    response = client.send_json("post", "/api/v1/customers", {"name": f"Zhang{CONTROLS} Wei"})
    assert response.status_code == 201, response.content[:200]
    customer = Customer.objects.get(pk=response.json()["id"])
    assert customer.name == "Zhang Wei"
    # Services (the back office, jobs) store clean text too; tab and newline are text.
    update_customer(
        customer, {"occupation": f"a{CONTROLS}b", "industry": "x\ty\nz\r"}, by=system_actor("tests")
    )
    customer.refresh_from_db()
    assert (customer.occupation, customer.industry) == ("ab", "x\ty\nz")
    # Event names and properties from /v1/track.
    _source, key = create_source(name="controls", by=system_actor("tests"))
    response = Client().post(
        "/v1/track",
        json.dumps({"userId": "u1", "event": f"Viewed{CONTROLS}", "properties": {"k": "v\x02"}}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
    )
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert event.name == "Viewed"
    # An import: every cell of a CSV.
    path = tmp_path / "controls.csv"
    # One control byte among many (a file full of them is refused as binary).
    path.write_text("email,name\nc@example.com,Li\x07Lei\x85\n", encoding="utf-8")
    call_command("import", "customers", str(path), "--json", stdout=io.StringIO())
    assert Customer.objects.filter(name="LiLei").exists()


def test_exports_strip_control_characters_already_stored(make_api_client):
    from kequn.dashboard.exports import build_list_xlsx
    from kequn.segments.services import set_static_members

    customer = make_customer(name="placeholder")
    # Stored before cleaning existed (an update bypasses save and its cleaning).
    Customer.objects.filter(pk=customer.pk).update(name=f"Old{CONTROLS}Name", city="a\x0bb")
    segment = Segment.objects.create(name="Q1/Q2 [x]: *?", kind=Segment.Kind.STATIC, rules={})
    set_static_members(segment, [customer.pk], by=system_actor("test"))
    client = make_api_client(superuser=True)
    response = client.get(f"/api/v1/segments/{segment.pk}/export?format=xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert book.sheetnames == ["Q1Q2 x"]
    values = [cell.value for row in book.active.iter_rows(min_row=2) for cell in row]
    assert "OldName" in values and "ab" in values
    book = load_workbook(io.BytesIO(build_list_xlsx("a/b:c", ["name"], [[f"x{CONTROLS}y"]])))
    assert book.sheetnames == ["abc"]
    assert book.active["A2"].value == "xy"


def test_sheet_names_are_valid_short_and_unique():
    from kequn.security.formulas import make_sheet_title

    taken: list[str] = []
    for title in ["Q1/Q2 [x]: *?", "Q1/Q2 [x]: *?", "q1q2 X", "", "'quoted'", "长" * 40, "History"]:
        name = make_sheet_title(title, taken)
        assert name and len(name) <= 31, name
        assert not set(name) & set("[]:*?/\\"), name
        assert name.lower() not in {t.lower() for t in taken} | {"history"}, name
        taken.append(name)
    assert taken[:3] == ["Q1Q2 x", "Q1Q2 x (2)", "q1q2 X (3)"]


# --- inputs that once answered 500 (issue 14, item 8) ---------------------------------------


def _nest(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _rule(condition: dict) -> dict:
    return {"rules": {"match": "all", "conditions": [condition]}}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"rules": {"match": "all", "conditions": [{"field": "clv", "operator": "gt", '
         '"value": NaN}]}}', "NaN"),
        ('{"rules": {"match": "all", "conditions": [{"field": "spend", "operator": "gt", '
         '"value": Infinity}]}}', "Infinity"),
        ('{"rules": {"match": "all", "conditions": [{"field": "clv", "operator": "lt", '
         '"value": 1e400}]}}', "1e400"),
        (json.dumps(_rule({"field": "order_count", "operator": "gte", "value": 1, "days": 10**8})),
         "'days' must be at most 36500"),
        (json.dumps(_rule({"field": "last_order", "operator": "within_days", "value": 10**8})),
         "at most 36500"),
        (json.dumps(_rule({"field": "created_at", "operator": "before", "value": "0001-01-01"})),
         "between 1900-01-01 and 2100-12-31"),
        (json.dumps(_rule({"field": "last_order", "operator": "after", "value": "9999-12-31"})),
         "between 1900-01-01 and 2100-12-31"),
        (json.dumps(_rule({"field": "clv", "operator": "gt", "value": 1e300})), "up to"),
        (json.dumps(_rule({"field": "in_segment", "operator": "in", "value": 2**63})), "2^63"),
        ('{"rules": {"match": "all", "conditions": [{"field": "city", "operator": "eq", '
         '"value": "\\ud800"}]}}', "lone UTF-16 surrogate"),
        (json.dumps({"rules": {"match": "all", "conditions": _nest(40)}}), "deeper than 32"),
        ('{"rules": ' + '{"match": "all", "conditions": [' * 3000 + "]}" * 3000 + "}",
         "nests deeper"),
    ],
)  # fmt: skip
def test_rule_values_that_broke_sql_are_422(make_api_client, body, needle):
    client = make_api_client(superuser=True)
    for path in ("/api/v1/segments/count", "/api/v1/segments"):
        payload = (
            body if path.endswith("count") else body.replace('{"rules"', '{"name": "n", "rules"', 1)
        )
        response = client.generic("POST", path, payload, content_type="application/json")
        assert needle in assert_one_line_error(response, 422), path
    assert not Segment.objects.exists()


@pytest.mark.parametrize("day", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-14:00"])
def test_extreme_dates_in_api_filters_and_privacy_requests_are_422(make_api_client, day):
    client = make_api_client(superuser=True)
    for url in ("/api/v1/events", "/api/v1/orders"):
        for name in ("since", "until"):
            response = client.get(url, {name: day})
            assert "between 1970-01-01 and 2100-12-31" in assert_one_line_error(response, 422)
    customer = make_customer()
    response = client.send_json(
        "post",
        "/api/v1/privacy-requests",
        {"type": "export", "customer_id": customer.pk, "received_at": day},
    )
    assert "received_at" in assert_one_line_error(response, 422)


def test_the_schema_describes_the_date_bounds(admin_client):
    schema = admin_client.get("/api/openapi.json").json()
    since = next(
        p for p in schema["paths"]["/api/v1/events"]["get"]["parameters"] if p["name"] == "since"
    )
    text = json.dumps(since)
    assert "2100" in text and '"pattern"' in text


@pytest.mark.parametrize(
    ("parameters", "needle"),
    [
        ({"fields": {"name": ["a"]}}, "name"),
        ({"fields": {"name": {"x": 1}, "city": 3}}, "city, name"),
        ({"fields": {"birthday": "0001-01-01"}}, "1900-01-01"),
        ({"fields": {"birthday": "9999-12-31"}}, "2100-12-31"),
    ],
)
def test_correction_requests_take_text_values_only(make_api_client, parameters, needle):
    client = make_api_client(superuser=True)
    customer = make_customer(name="Before")
    response = client.send_json(
        "post",
        "/api/v1/privacy-requests",
        {"type": "correction", "customer_id": customer.pk, "parameters": parameters},
    )
    assert needle in assert_one_line_error(response, 422)
    customer.refresh_from_db()
    assert customer.name == "Before"


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ({"timestamp": "0001-01-01T00:00:00+14:00"}, "between 1970-01-01 and 2100-12-31"),
        ({"timestamp": "9999-12-31T23:59:59-14:00"}, "between 1970-01-01 and 2100-12-31"),
        ({"event": "a\x00b"}, "NUL"),
        ({"event": "\ud800"}, "surrogate"),
        ({"properties": {"a": "x\udfff"}}, "body.properties.a"),
        ({"properties": {"deep": _nest(40)}}, "nests deeper"),
    ],
)  # fmt: skip
def test_bad_event_values_are_400(db, message, needle):
    from kequn.events.models import Event
    from kequn.events.services import create_source

    _source, key = create_source(name="bad events", by=system_actor("tests"))
    response = Client().post(
        "/v1/track",
        json.dumps({"userId": "u1", "event": "Viewed", **message}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
    )
    assert response.status_code == 400, response.content
    assert needle in response.json()["message"]
    assert not Event.objects.exists()
    deep = '{"userId": "u1", "event": "x", "properties": ' + "[" * 5000 + "]" * 5000 + "}"
    response = Client().post(
        "/v1/track",
        deep,
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
    )
    assert response.status_code == 400


def test_bad_json_lines_rows_are_quarantined_with_the_reason(tmp_path):
    lines = [
        '{"email": "ok@example.com", "name": "Fine"}',
        '{"email": "nul@example.com", "name": "a\\u0000b"}',
        '{"email": "sur@example.com", "name": "\\ud800"}',
        '{"email": "deep@example.com", "x": ' + "[" * 3000 + "]" * 3000 + "}",
        '{"email": "deep2@example.com", "x": ' + "[" * 40 + "]" * 40 + "}",
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import", "customers", str(path), "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["inserted"] == 1 and summary["quarantined"] == 4, summary
    messages = " ".join(QuarantinedRow.objects.values_list("message", flat=True))
    assert "NUL" in messages and "surrogate" in messages and "nests" in messages


def test_a_rule_field_that_is_not_text_is_422_for_a_user_without_birthdays(make_api_client):
    # The birthday-permission check hashed the field name: a list there answered 500.
    client = make_api_client("segments.view_segment")
    rule = {"match": "all", "conditions": [{"field": ["age"], "operator": "eq", "value": 1}]}
    response = client.send_json("post", "/api/v1/segments/count", {"rules": rule})
    assert "needs a 'field'" in assert_one_line_error(response, 422)


def test_a_blank_identity_value_is_refused_as_the_schema_says(make_api_client, admin_client):
    client = make_api_client(superuser=True)
    for value in ("", "   ", "\u3000"):
        response = client.send_json(
            "post", "/api/v1/customers", {"identities": [{"kind": "wechat", "value": value}]}
        )
        assert_one_line_error(response, 422)
    schema = admin_client.get("/api/openapi.json").json()["components"]["schemas"]["IdentityIn"]
    assert schema["properties"]["value"]["pattern"] == "\\S"


def test_a_date_time_offset_no_zone_has_is_a_422(make_api_client):
    # PostgreSQL refuses offsets past ±15:59 with an error (it answered 500); real zones
    # lie within ±14:00.
    client = make_api_client(superuser=True)
    for offset in ("-19:19", "+14:30"):
        response = client.get("/api/v1/orders", {"until": f"1999-02-12T20:30:10{offset}"})
        assert response.status_code == 422, (offset, response.content)
        assert "±14:00" in str(response.json()["detail"])
    assert client.get("/api/v1/orders", {"until": "1999-02-12T20:30:10+14:00"}).status_code == 200
