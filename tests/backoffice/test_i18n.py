"""The back office speaks Simplified Chinese by default and English on request."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.urls import reverse
from django.utils import translation

import kequn
from tests.backoffice.test_zh_pages import VisibleText

# The main catalogue, and each app's own (an app may keep its strings in <app>/locale/).
PO_PATHS = sorted(
    Path(kequn.__file__).resolve().parent.glob("**/locale/zh_Hans/LC_MESSAGES/django.po")
)


def get_page(client, url: str) -> str:
    """Fetch a page and return its HTML."""
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_chinese_by_default_and_english_after_switching(admin_client, data):
    url = reverse("admin:customers_customer_changelist")
    html = get_page(admin_client, url)
    assert "客户" in html and "身份标识" in html and "门店与渠道" in html
    # The language switcher is offered and posts to Django's set_language view.
    assert reverse("set_language") in html and "English" in html

    response = admin_client.post(reverse("set_language"), {"language": "en", "next": url})
    assert response.status_code == 302
    html = get_page(admin_client, url)
    assert "Identities" in html and "Stores and channels" in html
    assert "身份标识" not in html

    page_360 = get_page(admin_client, reverse("admin:customers_customer_360", args=[data.alice.pk]))
    assert "Consents in force" in page_360
    admin_client.post(reverse("set_language"), {"language": "zh-hans", "next": url})
    page_360 = get_page(admin_client, reverse("admin:customers_customer_360", args=[data.alice.pk]))
    assert "当前有效的同意记录" in page_360 and "首次购买" in page_360


@pytest.mark.parametrize("po_path", PO_PATHS, ids=lambda p: str(p.parents[3].name))
def test_catalogue_is_complete(po_path):
    po = polib.pofile(str(po_path))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"
    assert "nplurals=1" in po.metadata.get("Plural-Forms", "")


def get_catalogue(entries) -> dict:
    """Map (context, msgid) to its translation(s), for comparing the .po and the .mo."""
    catalogue = {}
    for entry in entries:
        if entry.obsolete or not entry.msgid:
            continue
        value = (
            tuple(entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural))
            if entry.msgid_plural
            else entry.msgstr
        )
        catalogue[(entry.msgctxt, entry.msgid)] = value
    return catalogue


@pytest.mark.parametrize("po_path", PO_PATHS, ids=lambda p: str(p.parents[3].name))
def test_compiled_catalogue_matches_the_source(po_path):
    # Compare contents rather than file times: a git checkout does not keep modification times.
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"compile {mo_path} (msgfmt or polib) and commit it"
    po_entries = get_catalogue(polib.pofile(str(po_path)))
    mo_entries = get_catalogue(polib.mofile(str(mo_path)))
    stale = sorted(str(k) for k in po_entries.keys() ^ mo_entries.keys())
    changed = sorted(
        str(k) for k in po_entries.keys() & mo_entries.keys() if po_entries[k] != mo_entries[k]
    )
    assert not stale and not changed, f".mo out of date with .po: {stale[:10]} {changed[:10]}"


def test_django_loads_the_translations():
    with translation.override("zh-hans"):
        assert translation.gettext("Stores and channels") == "门店与渠道"
        assert translation.ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", 2)
    with translation.override("en"):
        assert translation.gettext("Stores and channels") == "Stores and channels"


@pytest.mark.django_db
def test_codes_are_shown_by_their_labels(admin_client, data):
    from django.contrib.auth.models import Group, Permission

    from kequn.labels import get_code_label, get_permission_label
    from kequn.security.audit.models import AuditEntry

    with translation.override("zh-hans"):
        assert get_code_label("customers.customer") == "客户"
        assert [get_code_label(c) for c in ("store", "tmall", "jd", "wechat")] == [
            "门店",
            "天猫",
            "京东",
            "微信",
        ]
        assert get_code_label("Product Viewed") == "浏览商品"
        assert get_code_label("城东店") == "城东店"  # an unknown code is shown as it is
        add_customer = Permission.objects.get(codename="add_customer")
        assert get_permission_label(add_customer) == "客户 | 客户 | 可以添加客户"
        totp = Permission.objects.get(codename="add_totpdevice")
        assert (
            get_permission_label(totp) == "双因素认证：验证器应用 | 验证器应用 | 可以添加验证器应用"
        )

    customers = get_page(admin_client, reverse("admin:customers_customer_changelist"))
    assert "微信" in customers and ">wechat<" not in customers  # Alice's source channel
    assert AuditEntry.objects.filter(target_type="customers.customer").exists()
    audit = get_page(admin_client, reverse("admin:audit_auditentry_changelist"))
    parser = VisibleText()
    parser.feed(audit)
    assert not [t for t in parser.texts if "customers.customer" in t]
    assert "客户" in parser.texts
    group = Group.objects.create(name="testers")
    group.permissions.add(Permission.objects.get(codename="view_customer"))
    page = get_page(admin_client, reverse("admin:auth_group_change", args=[group.pk]))
    assert "可以查看客户" in page and "Can view customer" not in page


@pytest.mark.django_db
def test_the_dashboard_is_not_called_site_administration(admin_client, data):
    html = get_page(admin_client, reverse("admin:index"))
    assert "站点管理" not in html and "Site administration" not in html
    assert "<title>" in html and "仪表盘" in html.split("</title>")[0]
