"""The merge-field language: checking, rendering, escaping, customer data in bulk, preview."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from kequn.customers.models import Customer
from kequn.engage import content
from kequn.engage.content import (
    TemplateSyntaxError,
    build_merge_contexts,
    check_template,
    pick_language,
    preview,
    register_merge_fields,
    render,
    split_name,
    unregister_merge_fields,
)
from kequn.recommend.models import Recommendation
from kequn.scoring.models import CustomerScore, LifecycleStage, RFMSegment
from tests.factories import make_customer, make_product


def test_errors_name_the_line_the_field_and_the_fix():
    source = '你好 {{ first_name | default:"朋友" }}\n{{ nmae }}，{{ clv | mony }}\n{% for p in products %}\n{% if city %}'
    errors = [str(e) for e in check_template(source)]
    assert errors == [
        "line 2: unknown field {{ nmae }}; did you mean {{ name }}?",
        "line 2: unknown filter | mony; did you mean | money?",
        "line 3: unknown tag {% for %}; the tags are {% if field %}, {% else %} and {% endif %}",
        "line 4: {% if %} is not closed; add {% endif %}",
    ]
    assert check_template(source)[0].field == "nmae"
    assert check_template("{{ name }} {% if clv > 100 %}VIP{% else %}{{ city }}{% endif %}") == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ name ", "line 1: {{ is not closed; close it with }}"),
        ("a\n{% endif %}", "line 2: {% endif %} without an open {% if %}; remove it"),
        ("{{ name.__class__ }}", "line 1: unknown field {{ name.__class__ }}"),
        ("{{ name | default }}", "| default needs an argument"),
        ("{{ name | truncate:x }}", "the argument of | truncate must be quoted text or a number"),
        ("{% if clv > lots %}{% endif %}", "compare clv with quoted text or a number"),
        ("{{ }}", "empty {{ }}"),
    ],
)
def test_bad_templates_are_refused_with_one_line(source, problem):
    errors = check_template(source)
    assert errors and problem in str(errors[0]) and "\n" not in str(errors[0])
    with pytest.raises(TemplateSyntaxError):
        render(source, {})


def test_render_fills_fields_filters_and_conditions():
    context = {
        "name": "张三",
        "first_name": "",
        "clv": 12345.5,
        "churn_risk": 0.234,
        "orders": 3,
        "city": "",
    }
    source = (
        '{{ first_name | default:"朋友" }}，{{ clv | money }} {{ churn_risk | percent }} {{ orders | number }}'
        "{% if city %} {{ city }}{% else %} 无城市{% endif %}{% if orders >= 3 %} 老客{% endif %}"
        '{% if not city %}!{% endif %}{% if name == "张三" %} 是{% endif %}'
    )
    assert render(source, context) == "朋友，¥12,345.50 23% 3 无城市 老客! 是"
    assert render("{{ name | truncate:2 }}|{{ name | upper }}", {"name": "abc"}) == "a…|ABC"
    assert render('{{ clv | money:"$" }}', {"clv": 10}) == "$10"
    assert render("{{ city }}", {}) == ""  # a field without a value renders empty


def test_values_are_escaped_in_html_but_not_in_text():
    evil = {"name": '<script>alert("x")</script>&'}
    assert (
        render("<p>{{ name }}</p>", evil)
        == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;</p>"
    )
    assert render("Hi {{ name }}", evil) == 'Hi <script>alert("x")</script>&'
    assert render("Hi {{ name }}", evil, escape=True).startswith("Hi &lt;script")


def test_names_are_split_for_chinese_compound_and_western_names():
    assert split_name("张伟") == ("张", "伟")
    assert split_name("欧阳娜娜") == ("欧阳", "娜娜")
    assert split_name("John Smith") == ("Smith", "John")
    assert split_name("Smith, John") == ("Smith", "John")
    assert split_name("") == ("", "")
    assert (
        pick_language("en") == "en"
        and pick_language("") == "zh-hans"
        and pick_language("zh-hans") == "zh-hans"
    )


@pytest.mark.django_db
def test_merge_contexts_are_built_in_bulk_with_scores_products_and_language(monkeypatch):
    zh = make_customer(name="王芳")
    Customer.objects.filter(pk=zh.pk).update(gender="f")
    en = make_customer(name="John Smith", city="Shanghai")
    Customer.objects.filter(pk=en.pk).update(preferred_language="en", gender="m")
    bare = make_customer(name="李雷")
    now = timezone.now()
    CustomerScore.objects.create(
        customer=zh,
        computed_at=now,
        rfm_segment="champions",
        lifecycle_stage="at_risk",
        clv=8888.0,
        churn_risk=0.7,
    )
    CustomerScore.objects.create(
        customer=en, computed_at=now, rfm_segment="champions", lifecycle_stage="loyal"
    )
    phones = [make_product() for _ in range(4)]
    for rank, product in enumerate(phones, start=1):
        Recommendation.objects.create(
            customer=zh, product=product, rank=rank, score=1 / rank, source="test"
        )
    Recommendation.objects.create(customer=en, product=phones[0], rank=1, score=1, source="test")
    more = [make_customer().pk for _ in range(30)]

    with CaptureQueriesContext(connection) as queries:
        contexts = build_merge_contexts([zh.pk, en.pk, bare.pk, *more, 999999])
    registered = len(content._REGISTRY)
    monkeypatch.setattr(content, "_REGISTRY", {})  # the built-in fields alone
    with CaptureQueriesContext(connection) as own:
        assert build_merge_contexts([zh.pk, en.pk, bare.pk, *more])[zh.pk]["products"]
    assert len(own) == 3  # customers, scores, recommendations: not one per customer
    assert registered == 0 or len(queries) > 3  # other apps' fields are filled too

    a, b, c = contexts[zh.pk], contexts[en.pk], contexts[bare.pk]
    assert 999999 not in contexts and len(contexts) == 33
    assert (a["first_name"], a["surname"], a["salutation"], a["language"]) == (
        "芳",
        "王",
        "王女士",
        "zh-hans",
    )
    with translation.override("zh-hans"):
        zh_labels = (str(RFMSegment.CHAMPIONS.label), str(LifecycleStage.AT_RISK.label))
    assert (a["rfm_segment"], a["lifecycle_stage"], a["clv"]) == (*zh_labels, 8888.0)
    assert zh_labels != ("Champions", "At risk")  # really translated
    assert (
        a["products"] == "、".join(p.name for p in phones[:3]) and a["product_3"] == phones[2].name
    )
    assert (b["salutation"], b["language"], b["products"], b["lifecycle_stage"]) == (
        "Mr Smith",
        "en",
        phones[0].name,
        "Loyal",
    )
    assert (c["rfm_segment"], c["clv"], c["products"], c["salutation"]) == ("", None, "", "李雷")
    text = render('{{ salutation }}：{{ clv | money | default:"-" }}', c)
    assert text == "李雷：-"


@pytest.mark.django_db
def test_registered_fields_are_checked_and_filled():
    calls = []

    def bulk(ids):
        calls.append(list(ids))
        return {i: {"vip_level": f"V{i % 3}"} for i in ids}

    assert check_template("{{ vip_level }}")  # unknown before registration
    register_merge_fields("vip", bulk, {"vip_level": "VIP level"}, bulk=True)
    try:
        assert check_template("{{ vip_level }} {{ vip.vip_level }}") == []
        customer = make_customer(name="赵六")
        contexts = build_merge_contexts([customer.pk])
        assert render("{{ vip_level }}", contexts[customer.pk]) == f"V{customer.pk % 3}"
        assert calls == [[customer.pk]]
        assert "vip_level" in content.get_merge_fields()
        with pytest.raises(ValueError, match="already a built-in field"):
            register_merge_fields("other", bulk, {"name": "x"})
        with pytest.raises(ValueError, match="already registered by vip"):
            register_merge_fields("other", bulk, {"vip_level": "x"})
    finally:
        unregister_merge_fields("vip")
    assert check_template("{{ vip_level }}")


class _Template:
    def __init__(self, zh: tuple[str, str], en: tuple[str, str]) -> None:
        self.zh, self.en = zh, en

    def get_content(self, language: str) -> tuple[str, str]:
        return self.en if language.startswith("en") else self.zh


@pytest.mark.django_db
def test_preview_picks_the_customers_language_and_reports_errors():
    zh = make_customer(name="张三")
    en = make_customer(name="Jane Doe")
    Customer.objects.filter(pk=en.pk).update(preferred_language="en")
    template = _Template(
        ("{{ first_name }}，专属优惠", '<p>{{ name }} & {{ coupon_code | default:"—" }}</p>'),
        ("Hi {{ first_name }}", "<p>Dear {{ name }}</p>"),
    )
    first = preview(template, zh)
    assert (first.language, first.subject, first.body) == (
        "zh-hans",
        "三，专属优惠",
        "<p>张三 & —</p>",
    )
    second = preview(template, en.pk, extra={"coupon_code": "A1"})
    assert (second.language, second.subject, second.body) == (
        "en",
        "Hi Jane",
        "<p>Dear Jane Doe</p>",
    )
    broken = preview(_Template(("x", "{{ nmae }}"), ("x", "y")), zh)
    assert not broken.is_ok and "did you mean {{ name }}" in str(broken.errors[0])
    with pytest.raises(Customer.DoesNotExist):
        preview(template, 999999)
