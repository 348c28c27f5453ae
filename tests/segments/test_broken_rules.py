"""A rule naming a deleted tag, category, product or segment disables only its own segment."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import translation

from kequn.commerce.models import Category
from kequn.customers.models import Tag
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.segments import services
from kequn.segments.models import Segment, SegmentMember

SHANGHAI = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}
VIP = {"match": "all", "conditions": [{"field": "tag", "operator": "any_of", "value": ["VIP"]}]}
CASES = {
    "match": "all",
    "conditions": [{"field": "bought_category", "operator": "any_of", "value": ["cases"]}],
}


@pytest.fixture
def owner(db):
    return User.objects.create_superuser("owner", password="x")


@pytest.fixture
def broken(shop, owner):
    """Three segments (the middle one names the VIP tag) and a tag rule; then VIP is deleted."""
    first = services.create_segment("First", SHANGHAI, by=owner)
    vip = services.create_segment("VIPs", VIP, by=owner)
    last = services.create_segment("Last", SHANGHAI, by=owner)
    tag_rule = services.save_tag_rule("Shanghai", SHANGHAI, by=system_actor("test"))
    Tag.objects.filter(name="VIP").delete()
    # Data changes the refresh must pick up for the segments after the broken one.
    shop.li.city = "上海"
    shop.li.save()
    return first, vip, last, tag_rule


def names(segment):
    return set(
        SegmentMember.objects.filter(segment=segment).values_list("customer__name", flat=True)
    )


def test_refresh_disables_the_broken_segment_and_refreshes_the_rest(broken):
    first, vip, last, tag_rule = broken
    with translation.override("en"):
        done = services.refresh_all(by=system_actor("test"))
    assert done["segments"] == 2 and done["tag_rules"] == 1
    assert names(first) == names(last) == {"王", "赵", "李"}
    tag_rule.refresh_from_db()
    assert tag_rule.member_count == 3 and tag_rule.disabled_at is None
    vip.refresh_from_db()
    assert vip.disabled_at is not None
    assert vip.disabled_reason == [{"kind": "tag", "value": "VIP", "path": "rules.conditions[0]"}]
    assert names(vip) == {"王", "Acme"}  # the last members are kept
    assert done["disabled"] == [
        f"segment #{vip.pk} VIPs: the rule names the tag “VIP”, which no longer exists"
    ]
    with translation.override("zh-hans"):
        assert "不再存在" in services.describe_problems(vip.disabled_reason)


def test_owner_is_told_and_the_audit_trail_records_it(broken, owner):
    _first, vip, _last, _tag_rule = broken
    services.refresh_all(by=system_actor("test"))
    entry = LogEntry.objects.get(user=owner, object_id=str(vip.pk))
    assert "VIP" in entry.change_message
    assert AuditEntry.objects.filter(target_id=str(vip.pk), detail__disabled=True).count() == 1
    # A second night neither refreshes it nor tells the owner twice.
    again = services.refresh_all(by=system_actor("test"))
    assert again["segments"] == 2 and len(again["disabled"]) == 1
    assert LogEntry.objects.filter(user=owner, object_id=str(vip.pk)).count() == 1


def test_cli_finishes_the_rest_then_exits_1_naming_each_broken_segment(broken, capsys):
    _first, vip, last, _tag_rule = broken
    with pytest.raises(SystemExit) as exited:
        call_command("segments", "refresh")
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert "Refreshed 2 segments and 1 tag rules" in out
    assert err.strip().splitlines() == [
        f"disabled: segment #{vip.pk} VIPs: the rule names the tag “VIP”, which no longer exists"
    ]
    assert names(last) == {"王", "赵", "李"}


# The score refresh truncates and bulk-loads tables, which PostgreSQL refuses inside the
# wrapping transaction of an ordinary test.
@pytest.mark.django_db(transaction=True)
def test_the_nightly_chain_runs_past_a_broken_segment(broken):
    from kequn.dashboard.models import DashboardRefresh
    from kequn.jobs.pipelines import refresh_analytics

    _first, vip, last, _tag_rule = broken
    result = refresh_analytics(by=system_actor("tests"))
    assert {"segments", "dashboard"} <= set(result.steps)
    assert any(f"#{vip.pk} VIPs" in note for note in result.notes)
    assert DashboardRefresh.objects.exists()
    assert names(last) == {"王", "赵", "李"}


def test_fixing_the_rule_or_restoring_the_tag_enables_it_again(broken, owner):
    _first, vip, _last, _tag_rule = broken
    services.refresh_all(by=system_actor("test"))
    Tag.objects.create(name="VIP")  # restored, with nobody yet
    done = services.refresh_all(by=system_actor("test"))
    vip.refresh_from_db()
    assert vip.disabled_at is None and vip.disabled_reason == [] and done["disabled"] == []
    assert names(vip) == set()
    Tag.objects.filter(name="VIP").delete()
    services.refresh_all(by=system_actor("test"))
    vip.refresh_from_db()
    assert vip.disabled_at is not None
    services.update_segment(vip, {"rules": SHANGHAI}, by=owner)
    vip.refresh_from_db()
    assert vip.disabled_at is None and names(vip) == {"王", "赵", "李"}


def test_a_deleted_category_or_segment_disables_the_segments_naming_them(shop, owner):
    cases = services.create_segment("Cases", CASES, by=owner)
    base = services.create_segment("Base", SHANGHAI, by=owner)
    nested = services.create_segment(
        "Nested",
        {
            "match": "all",
            "conditions": [{"field": "in_segment", "operator": "in", "value": base.pk}],
        },
        by=system_actor("test"),
    )
    Category.objects.filter(code="cases").update(code="phone-cases")  # renamed away
    Segment.objects.filter(pk=base.pk).delete()  # behind the service's back, as a script might
    done = services.refresh_all(by=system_actor("test"))
    assert done["segments"] == 0 and len(done["disabled"]) == 2
    cases.refresh_from_db()
    nested.refresh_from_db()
    assert cases.disabled_reason[0]["kind"] == "category"
    assert nested.disabled_reason[0] == {
        "kind": "segment",
        "value": base.pk,
        "path": "rules.conditions[0]",
    }


def test_a_tag_rule_naming_a_deleted_tag_is_disabled_not_fatal(shop):
    tag_rule = services.save_tag_rule("Fans of VIP", VIP, by=system_actor("test"))
    ok = services.save_tag_rule("Shanghai", SHANGHAI, by=system_actor("test"))
    Tag.objects.filter(name="VIP").delete()
    with translation.override("en"):
        done = services.refresh_all(by=system_actor("test"))
    assert done["tag_rules"] == 1
    tag_rule.refresh_from_db()
    ok.refresh_from_db()
    assert tag_rule.disabled_at is not None and ok.disabled_at is None
    assert done["disabled"][0].startswith(f"tag rule #{tag_rule.pk} ")


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [("bought_category", "nope", "category"), ("bought_product", "NO-SKU", "product")],
)
def test_a_new_rule_cannot_name_a_missing_category_or_product(shop, field, value, word):
    rule = {
        "match": "all",
        "conditions": [{"field": field, "operator": "any_of", "value": [value]}],
    }
    with pytest.raises(ValidationError) as caught, translation.override("en"):
        services.create_segment("Missing", rule, by=system_actor("test"))
    assert caught.value.messages == [f"rules.conditions[0]: unknown {word} '{value}'"]


def test_deleting_a_used_tag_or_category_lists_the_rules_first(shop, admin_client):
    segment = services.create_segment("VIPs", VIP, by=system_actor("test"))
    tag_rule = services.save_tag_rule("VIP buyers", VIP, by=system_actor("test"))
    cases = services.create_segment("Cases", CASES, by=system_actor("test"))
    page = admin_client.get(f"/admin/customers/tag/{shop.vip.pk}/delete/").content.decode()
    assert 'id="kequn-rules-using"' in page
    assert f"/admin/segments/segment/{segment.pk}/change/" in page
    assert f"/admin/segments/tagrule/{tag_rule.pk}/change/" in page
    unused = admin_client.get(f"/admin/customers/tag/{shop.fan.pk}/delete/").content.decode()
    assert "kequn-rules-using" not in unused
    # The bulk delete action asks the same way.
    bulk = admin_client.post(
        "/admin/customers/tag/",
        {"action": "delete_selected", "_selected_action": [shop.vip.pk, shop.fan.pk]},
    ).content.decode()
    assert f"/admin/segments/segment/{segment.pk}/change/" in bulk
    category = Category.objects.get(code="cases")
    page = admin_client.get(f"/admin/commerce/category/{category.pk}/delete/").content.decode()
    assert f"/admin/segments/segment/{cases.pk}/change/" in page


def test_deleting_a_used_segment_is_refused_on_the_confirmation_page(shop, admin_client):
    base = services.create_segment("Base", SHANGHAI, by=system_actor("test"))
    services.create_segment(
        "Nested",
        {
            "match": "all",
            "conditions": [{"field": "in_segment", "operator": "in", "value": base.pk}],
        },
        by=system_actor("test"),
    )
    page = admin_client.get(f"/admin/segments/segment/{base.pk}/delete/").content.decode()
    assert "Nested" in page and 'name="post"' not in page
    admin_client.post(f"/admin/segments/segment/{base.pk}/delete/", {"post": "yes"})
    assert Segment.objects.filter(pk=base.pk).exists()


def test_list_and_page_show_why_a_segment_is_disabled_in_chinese(broken, admin_client, owner):
    _first, vip, _last, _tag_rule = broken
    services.refresh_all(by=system_actor("test"))
    admin_client.cookies["django_language"] = "zh-hans"
    listing = admin_client.get("/admin/segments/segment/").content.decode()
    assert "已停用" in listing and "不再存在" in listing
    page = admin_client.get(f"/admin/segments/segment/{vip.pk}/change/").content.decode()
    assert 'id="kequn-disabled"' in page and "VIP" in page
    assert "您的分群" not in listing  # the administrator does not own it
    # Its owner is told on the list too.
    admin_client.force_login(owner)
    listing = admin_client.get("/admin/segments/segment/").content.decode()
    assert listing.count("您的分群 VIPs 已停用") == 1
