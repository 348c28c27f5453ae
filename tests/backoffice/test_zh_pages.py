"""Every back-office page in zh-hans shows no English interface text.

The test signs in as the administrator, opens every admin list, add page and change page
(of every model with a row), the dashboard, the reports page, the customer 360 page and the
admins' own views, extracts the text a user sees (text nodes, titles, placeholders, labels
read by screen readers) and fails on runs of Latin letters that are not data values, product
names or units.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import models
from django.urls import URLPattern, reverse
from django.utils import translation

from kequn.dashboard.services import refresh_dashboard
from kequn.security.actors import system_actor

# Names and units a Chinese interface writes in Latin letters too.
ALLOWED = {
    "API",
    "App",
    "CLV",
    "CNY",
    "CSV",
    "Excel",
    "ID",
    "JSON",
    "KPI",
    "Kequn",
    "PDF",
    "RFM",
    "SKU",
    "SMS",
    "TOTP",
    "URL",
    "UTC",
    "English",  # the language switch names each language in itself
    "en",  # language codes beside the language names
    "zh-hans",
    "esc",  # keys: the search closes with esc; multiple choice with Control or Command on a Mac
    "Control",
    "Command",
    "Mac",
    "IP",  # protocol and technical names the audit trail and user forms use
    "MAC",
    "HTTP",
    "User-Agent",
    "LDAP",
    "WeChat",
    "openid",
    "shopify",  # the example of an external system's name
    "HubSpot",  # systems whose exports the importer reads, and file formats
    "Salesforce",
    "Shopify",
    "Zoho CRM",
    "Fxiaoke",
    "JSON lines",
    "Parquet",
    "xlsx",
    "NPS",  # survey kinds and a channel's name, written in Latin letters in Chinese too
    "CSAT",
    "CES",
    "Webhook",
    # Keys and values of the JSON examples in help texts (codes the field expects as typed):
    # journeys' goal, a business calendar's hours, loyalty's multipliers and event points.
    "kind",
    "purchase",
    "Order Completed",
    "mon",
    "phones",
    "review",
    "sign",
    "in",
}
# Upstream admin pages whose labels are hard-coded in English (django-otp's device admin): they
# cannot be translated in a catalogue. Administrators reach two-factor setup through
# Kequn's own pages (/admin/otp/setup/), which are translated.
UNTRANSLATABLE_PREFIXES = ("/admin/otp_totp/", "/admin/otp_static/")
# Columns holding codes that pages must show by their label, so they are not data words.
CODED_COLUMNS = {"customers.customer.source_channel", "events.event.channel", "events.event.name"}
# Ligature icons (material symbols) and hidden templates are not text.
ICON_CLASSES = ("material-symbols",)
MASKED = re.compile(r"\S*\*{3,}\S*")
SKIPPED_TAGS = {"script", "style", "noscript", "svg", "code", "pre", "kbd", "textarea", "canvas"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")
WORD_RUN = re.compile(r"[A-Za-z][A-Za-z’']*(?:[ \-][A-Za-z][A-Za-z’']*)*")


class VisibleText(HTMLParser):
    """Collect the text a user sees or hears on a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        hidden = tag in SKIPPED_TAGS or any(
            icon in values.get("class", "") for icon in ICON_CLASSES
        )
        if not self.skipping and not hidden:
            self.texts.extend(values[name] for name in ATTRIBUTES if values.get(name))
            if tag == "input" and values.get("type") in ("submit", "button"):
                self.texts.append(values.get("value", ""))
        if tag not in VOID_TAGS:
            self.stack.append(hidden)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID_TAGS and self.stack:
            self.stack.pop()

    @property
    def skipping(self) -> bool:
        return any(self.stack)

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def get_english_runs(html: str, allowed: set[str]) -> set[str]:
    """Return the runs of Latin-letter words on a page that are neither data nor allowed."""
    parser = VisibleText()
    parser.feed(html)
    found = set()
    for text in parser.texts:
        # A masked value (a password hash's "Fg**********", a phone) is data, whatever it shows.
        text = MASKED.sub(" ", text)
        for run in WORD_RUN.findall(text):
            words = [w for w in re.split(r"[ \-]", run) if w]
            if run.startswith("kequn "):
                continue  # a command to type, e.g. kequn analytics refresh
            if run in allowed or all(w in allowed or _is_not_a_word(w) for w in words):
                continue
            found.add(run)
    return found


def _is_not_a_word(word: str) -> bool:
    """Tell a single letter or a random token (a masked hash, a key) from an English word."""
    return len(word) < 2 or re.search(r"[a-z][A-Z]", word) is not None


def get_data_words() -> set[str]:
    """Return the words of every free-text value stored (names, codes, SKUs): data, not UI."""
    from kequn.events.models import Event
    from kequn.labels import EVENT_LABELS

    words: set[str] = set()
    for name in Event.objects.exclude(name__in=list(EVENT_LABELS)).values_list("name", flat=True):
        words.update(re.split(r"[^A-Za-z’']+", name))
    for model in apps.get_models():
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, (models.CharField, models.TextField))
            and not f.choices
            and f"{model._meta.label_lower}.{f.name}" not in CODED_COLUMNS
        ]
        if not fields:
            continue
        for row in model._default_manager.values_list(*fields)[:500]:
            for value in row:
                if isinstance(value, str):
                    words.update(re.split(r"[^A-Za-z’']+", value))
    words.discard("")
    # A data value may show capitalised ("admin" as "Admin").
    return words | {w.capitalize() for w in words} | {w.lower() for w in words}


OBJECT_NAMES: dict[str, str] = {}


def get_admin_pages() -> list[str]:
    """Return every admin list, add page and change page (of the first row) and custom view."""
    urls = [reverse("admin:index"), reverse("dashboard:reports")]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        urls.append(reverse(f"{prefix}_changelist"))
        urls.append(reverse(f"{prefix}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            url = reverse(f"{prefix}_change", args=[first.pk])
            urls.append(url)
            # A row's own name heads its change page: data, like the values in its fields.
            OBJECT_NAMES[url] = str(first)
        standard = {f"{prefix[6:]}_{view}" for view in STANDARD_VIEWS}
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in standard:
                urls.extend(_custom_view_urls(pattern, first))
    return list(dict.fromkeys(urls))


def _custom_view_urls(pattern: URLPattern, first: models.Model | None) -> list[str]:
    """Return the URL of an admin's own view: without arguments, or for its model's first row."""
    converters = pattern.pattern.converters
    try:
        if not converters:
            return [reverse(f"admin:{pattern.name}")]
        if len(converters) == 1 and first is not None:
            return [reverse(f"admin:{pattern.name}", args=[first.pk])]
    except Exception:  # a view that needs other arguments is not a page to visit
        return []
    return []


@pytest.mark.slow
@pytest.mark.django_db
def test_every_back_office_page_is_in_chinese(admin_client, data):
    refresh_dashboard(by=system_actor("tests"))
    allowed = ALLOWED | get_data_words()
    failures = {}
    visited = 0
    for url in get_admin_pages():
        if url.startswith(UNTRANSLATABLE_PREFIXES):
            continue
        response = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        visited += 1
        own_name = set(re.split(r"[^A-Za-z’']+", OBJECT_NAMES.get(url, "")))
        english = get_english_runs(response.content.decode(), allowed | own_name)
        if english:
            failures[url] = sorted(english)
    assert visited > 60, f"only {visited} pages rendered"
    assert not failures, "English on zh-hans pages:\n" + "\n".join(
        f"{url}: {words}" for url, words in failures.items()
    )


def test_the_detector_finds_english_and_ignores_icons_and_data():
    html = (
        '<p>筛选 <span class="material-symbols-outlined">filter_alt</span></p>'
        '<button title="Apply Filters">应用</button><td>Phone X</td><script>var a = "x";</script>'
        "<p>RFM 矩阵</p><p>Reset filters</p><p>哈希: Fg**********</p>"
    )
    found = get_english_runs(html, ALLOWED | {"Phone", "X"})
    assert found == {"Apply Filters", "Reset filters"}


@pytest.mark.django_db
def test_a_real_list_page_shows_the_theme_in_chinese(admin_client, data):
    html = admin_client.get("/admin/customers/customer/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = " ".join(_visible(html.content.decode()))
    for chinese in ("筛选", "应用筛选", "搜索应用和模型", "浅色", "深色", "跟随系统"):
        assert chinese in text, chinese
    for english in ("Apply Filters", "Search apps and models", "Filters"):
        assert english not in text, english


def _visible(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.texts


@pytest.mark.django_db
def test_theme_strings_come_from_our_catalogue():
    with translation.override("zh-hans"):
        assert translation.gettext("Filters") == "筛选"
        assert translation.gettext("Apply Filters") == "应用筛选"
        assert translation.gettext("Return to site") == "返回站点"
        # The range filters' placeholders are "from" and "to", not stage names.
        assert translation.gettext("From") == "从"
        assert translation.gettext("To") == "至"
