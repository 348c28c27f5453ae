"""Email bodies prepared once per template shape give what preparing each message gives."""

from __future__ import annotations

import html

import pytest

from kequn.engage import content, mailmerge
from kequn.engage.channels.html import html_to_text, prepare_html

OFFER = """<html><head><style>.btn { color: #ffffff; background-color: #e4393c }</style></head>
<body><h2>{{ salutation }}，您好！</h2>
{% if products %}<p>为您推荐：</p><table><tr><td>{{ product_1 }}</td></tr></table>{% else %}<p>欢迎回来</p>{% endif %}
<p>会员价值 {{ clv | money }}</p>
<p><a class="btn" href="https://shop.example/c/{{ coupon_code }}">立即使用</a></p>
<p><a href="{{ unsubscribe_url }}">退订</a></p></body></html>"""


def _one_by_one(source: str, context: dict) -> tuple[str, str]:
    prepared = prepare_html(content.render(source, context, escape=True))
    return prepared, html_to_text(prepared)


def _normalised(document: str) -> str:
    # The sanitiser writes quotes in text as they are; escaped values carry &quot;/&#x27;.
    return html.unescape(document)


@pytest.mark.parametrize(
    "context",
    [
        {"salutation": "张先生", "products": "有", "product_1": "Phone X", "clv": 1234.5},
        {"salutation": "O'Brien & <Sons>", "products": "", "clv": None},
        {"salutation": '"><script>alert(1)</script>', "products": "有", "product_1": "<b>x</b>"},
    ],
)
def test_the_prepared_shape_gives_what_preparing_each_message_gives(context):
    context = {
        **context,
        "coupon_code": "CQ0000042",
        "unsubscribe_url": "https://crm.example/engage/unsubscribe/abc:def/",
    }
    document, text = mailmerge.render_email_body(OFFER, context)
    expected_document, expected_text = _one_by_one(OFFER, context)
    assert _normalised(document) == _normalised(expected_document)
    assert text == expected_text
    assert "<script" not in document and "style=" in document  # sanitised, CSS inlined


def test_a_link_value_with_an_unsafe_scheme_is_prepared_on_its_own():
    context = {"salutation": "李女士", "unsubscribe_url": "javascript:alert(1)"}
    document, _text = mailmerge.render_email_body(OFFER, context)
    assert "javascript" not in document  # the sanitiser dropped it, as for any message
    assert document == _one_by_one(OFFER, context)[0]


def test_a_field_inside_a_style_rule_falls_back_to_preparing_each_message():
    source = '<p style="color: {{ city }}">{{ name }}</p>'
    context = {"city": "red; position: fixed", "name": "王芳"}
    document, text = mailmerge.render_email_body(source, context)
    assert (document, text) == _one_by_one(source, context)
    assert "position" not in document


def test_a_shape_is_prepared_once_for_many_recipients():
    mailmerge._prepare_shape.cache_clear()
    for i in range(50):
        mailmerge.render_email_body(OFFER, {"salutation": f"客户{i}", "products": "有"})
        mailmerge.render_email_body(OFFER, {"salutation": f"客户{i}", "products": ""})
    assert mailmerge._prepare_shape.cache_info().misses == 2  # one per branch taken
