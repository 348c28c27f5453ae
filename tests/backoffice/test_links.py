"""Links drawn many times a page are the links reverse() gives, under any script prefix."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse, set_script_prefix

from kequn.links import get_object_url, get_url


@pytest.fixture
def prefix():
    yield set_script_prefix
    set_script_prefix("/")


@pytest.mark.parametrize("key", [7, "42", "a/b_c?d", "深圳:1", "x y%z#", "'quoted'"])
@pytest.mark.parametrize("script_prefix", ["/", "/kequn/"])
def test_object_links_match_reverse(prefix, key, script_prefix):
    prefix(script_prefix)
    # Admin change pages take any key (a path converter) and quote it as the admin does.
    expected = reverse("admin:customers_tag_change", args=[quote(key)])
    assert get_object_url("admin:customers_tag_change", key) == expected
    assert expected.startswith(f"{script_prefix}admin/customers/tag/")


def test_links_follow_the_script_prefix(prefix):
    assert get_url("admin:customers_customer_changelist") == "/admin/customers/customer/"
    assert get_object_url("admin:customers_customer_360", 12) == "/admin/customers/customer/12/360/"
    prefix("/crm/")
    assert get_url("admin:customers_customer_changelist") == "/crm/admin/customers/customer/"
    assert (
        get_object_url("admin:customers_customer_360", 12)
        == "/crm/admin/customers/customer/12/360/"
    )


def test_unknown_views_raise_as_reverse_does():
    with pytest.raises(NoReverseMatch):
        get_url("admin:no_such_view")
    with pytest.raises(NoReverseMatch):
        get_object_url("admin:no_such_view", 1)
    # A view that takes no key cannot be given one.
    with pytest.raises(NoReverseMatch):
        get_object_url("admin:index", 1)
