"""Every back-office list loads, filters and searches through the indexed paths."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def get_list(client, name: str, params: dict | None = None) -> str:
    """Fetch a changelist and return its HTML, failing on anything but 200."""
    response = client.get(reverse(f"admin:{name}_changelist"), params or {})
    assert response.status_code == 200, (name, params)
    # A bad filter parameter makes Django redirect or flag ?e=1; neither may happen silently.
    assert "?e=1" not in response.get("Location", "")
    return response.content.decode()


def check_rows(html: str, present: list[str], absent: list[str]) -> None:
    """Assert which row markers the page shows."""
    for text in present:
        assert text in html, f"{text!r} missing"
    for text in absent:
        assert text not in html, f"{text!r} should be filtered out"


@pytest.mark.parametrize(
    "name",
    [
        "customers_customer",
        "customers_identity",
        "customers_tag",
        "customers_taggroup",
        "commerce_order",
        "commerce_product",
        "commerce_category",
        "commerce_channel",
        "events_event",
        "auth_user",
        "auth_group",
        "security_apitoken",
    ],
)
def test_every_list_loads(admin_client, data, name):
    get_list(admin_client, name)
    get_list(admin_client, name, {"q": "x"})


def test_customer_filters(admin_client, data):
    people = ["Alice Wang", "Bob Li", "Acme Trading"]
    cases = [
        ({"kind": "company"}, ["Acme Trading"]),
        ({"gender": "f"}, ["Alice Wang"]),
        ({"province": "Beijing"}, ["Bob Li"]),
        ({"city": "Shenzhen"}, ["Alice Wang"]),
        ({"source_channel": "store"}, ["Bob Li"]),
        ({"age_band": "25-34"}, ["Alice Wang"]),
        ({"income_band": "medium"}, ["Bob Li"]),
        ({"tag": str(data.vip.pk)}, ["Alice Wang"]),
        ({"created_at_from": "2023-04-01", "created_at_to": "2023-05-01"}, ["Bob Li"]),
        ({"q": "Bob"}, ["Bob Li"]),
        ({"q": str(data.acme.pk)}, ["Acme Trading"]),
    ]
    for params, present in cases:
        html = get_list(admin_client, "customers_customer", params)
        check_rows(html, present, [p for p in people if p not in present])


@pytest.mark.parametrize(
    "term",
    ["138 0013 8000", "+86-138-0013-8000", "８６１３８００１３８０００", "ALICE@example.COM"],
)
def test_customer_search_by_identity_in_any_format(admin_client, data, term):
    html = get_list(admin_client, "customers_customer", {"q": term})
    check_rows(html, ["Alice Wang"], ["Bob Li", "Acme Trading"])


def test_identity_search_normalises_the_term(admin_client, data):
    html = get_list(admin_client, "customers_identity", {"q": "138-0013-8000"})
    check_rows(html, ["+8613800138000"], ["+8613900139000"])
    html = get_list(admin_client, "customers_identity", {"kind": "email"})
    check_rows(html, ["alice@example.com"], ["+8613900139000"])


def test_order_filters_and_search(admin_client, data):
    numbers = ["SO-1001", "SO-1002", "SO-1003", "WEB-2001"]
    cases = [
        ({"status": "cancelled"}, ["SO-1003"]),
        ({"channel__id__exact": str(data.store.pk)}, ["SO-1001"]),
        ({"ordered_at_from": "2024-03-01", "ordered_at_to": "2024-03-31"}, ["SO-1002"]),
        ({"total_amount_from": "1000"}, ["SO-1001"]),
        ({"customer": str(data.bob.pk)}, ["WEB-2001"]),
        ({"q": "SO-100"}, ["SO-1001", "SO-1002", "SO-1003"]),
        ({"q": "WEB-2001"}, ["WEB-2001"]),
        ({"q": str(data.bob.pk)}, ["WEB-2001"]),
    ]
    for params, present in cases:
        html = get_list(admin_client, "commerce_order", params)
        check_rows(html, present, [n for n in numbers if n not in present])


def test_order_page_shows_lines(admin_client, data):
    response = admin_client.get(reverse("admin:commerce_order_change", args=[data.orders[1].pk]))
    assert response.status_code == 200
    assert "CASE-001" in response.content.decode()


def test_product_filters_and_search(admin_client, data):
    skus = ["CASE-001", "PHONE-X"]
    cases = [
        ({"category__id__exact": str(data.phone_case.category_id)}, ["CASE-001"]),
        ({"brand": "Other"}, ["PHONE-X"]),
        ({"is_consumable__exact": "1"}, ["CASE-001"]),
        ({"is_active__exact": "0"}, ["PHONE-X"]),
        ({"q": "CASE"}, ["CASE-001"]),
        ({"q": "phone x"}, ["PHONE-X"]),
    ]
    for params, present in cases:
        html = get_list(admin_client, "commerce_product", params)
        check_rows(html, present, [s for s in skus if s not in present])


def test_category_shows_path(admin_client, data):
    html = get_list(admin_client, "commerce_category")
    assert "Accessories › Cases" in html


def test_event_filters_and_search(admin_client, data):
    names = ["Alice Wang", "Bob Li"]
    cases = [
        ({"type": "page"}, ["Bob Li"]),
        ({"name": "Product Viewed"}, ["Alice Wang"]),
        ({"channel": "web"}, ["Bob Li"]),
        ({"occurred_at_from": "2024-03-01", "occurred_at_to": "2024-03-08"}, ["Alice Wang"]),
        ({"customer": str(data.alice.pk)}, ["Alice Wang"]),
        ({"q": "anon-42"}, ["Bob Li"]),
        ({"q": str(data.alice.pk)}, ["Alice Wang"]),
    ]
    for params, present in cases:
        html = get_list(admin_client, "events_event", params)
        check_rows(html, present, [n for n in names if n not in present])


def test_small_lists_filter(admin_client, data):
    html = get_list(admin_client, "commerce_channel", {"kind": "store"})
    check_rows(html, ["sz-01"], ["Web shop"])
    # The page echoes the search term, so look for the tag's row (its change link), not "VIP";
    # a tag that does not match stays out.
    from kequn.customers.models import Tag

    other = Tag.objects.create(group=data.vip.group, name="Regular")
    html = get_list(admin_client, "customers_tag", {"q": "VIP"})
    check_rows(
        html,
        [reverse("admin:customers_tag_change", args=[data.vip.pk])],
        [reverse("admin:customers_tag_change", args=[other.pk])],
    )
    html = get_list(admin_client, "security_apitoken", {"revoked__exact": "1"})


def test_big_lists_do_not_count(admin_client, data, django_assert_max_num_queries):
    # Orders and events page without COUNT(*): the paginator never asks for a total.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for name in ("commerce_order", "events_event"):
        with CaptureQueriesContext(connection) as ctx:
            get_list(admin_client, name)
        counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
        assert counts == [], (name, counts)


def test_anonymous_user_is_sent_to_login(client, data):
    for url in (
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_360", args=[data.alice.pk]),
        reverse("admin:commerce_order_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_a_list_builds_its_column_headers_once_not_once_per_row(admin_client, data, monkeypatch):
    from kequn.dashboard import changelists

    builds = []
    build = changelists._build_headers

    def counted(cl):
        builds.append(cl)
        return build(cl)

    monkeypatch.setattr(changelists, "_build_headers", counted)
    html = get_list(admin_client, "customers_customer", {"o": "-2"})
    check_rows(html, ["Alice Wang", "Bob Li", "Acme Trading"], [])
    assert len(builds) == 1
    # Every row still has its cells under the headers' columns, sorted as asked.
    assert html.count('class="field-name_link') == 3
    assert html.index("Bob Li") < html.index("Alice Wang") < html.index("Acme Trading")


def test_pages_build_the_app_list_only_where_it_is_shown(admin_client, data, monkeypatch):
    from unfold.sites import UnfoldAdminSite

    built = []
    build = UnfoldAdminSite.get_app_list

    def counted(site, request, app_label=None):
        built.append(app_label)
        return build(site, request, app_label)

    monkeypatch.setattr(UnfoldAdminSite, "get_app_list", counted)
    get_list(admin_client, "customers_customer")
    assert built == []  # the sidebar is Kequn's own: no page reads Django's app list
    answer = admin_client.get(reverse("admin:app_list", args=["customers"]))
    assert answer.status_code == 200 and built == ["customers"]
    assert reverse("admin:customers_customer_changelist") in answer.content.decode()
    assert admin_client.get("/admin/no_such_app/").status_code == 404


def test_row_links_keep_the_filters_without_resolving_each_row(admin_client, data, monkeypatch):
    from django.contrib.admin.templatetags import admin_urls
    from django.contrib.admin.views.main import ChangeList
    from unfold.templatetags import unfold_list

    from kequn.dashboard import changelists

    resolved = []
    resolve = admin_urls.resolve
    monkeypatch.setattr(admin_urls, "resolve", lambda url: resolved.append(url) or resolve(url))
    fast = get_list(admin_client, "customers_customer", {"o": "-2", "kind__exact": "person"})
    # The "add" button still resolves its link once; the rows resolve none.
    assert [url for url in resolved if url.endswith("/change/")] == []
    assert (
        fast.count("change/?_changelist_filters=o%3D-2%26kind__exact%3Dperson") == 2
    )  # two people
    # The page is the one Django's own tag and row link draw, resolving every row.
    monkeypatch.setattr(unfold_list, "add_preserved_filters", admin_urls.add_preserved_filters)
    monkeypatch.setattr(ChangeList, "url_for_result", changelists._url_for_result)
    slow = get_list(admin_client, "customers_customer", {"o": "-2", "kind__exact": "person"})
    assert len([url for url in resolved if url.endswith("/change/")]) == 2

    def strip_token(html: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)

    assert strip_token(fast) == strip_token(slow)
