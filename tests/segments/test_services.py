"""Dynamic vs static segments, membership history, tags in bulk, tag rules, masking."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from kequn.customers.models import CustomerTag, Identity, Tag
from kequn.security.actors import system_actor
from kequn.segments import services
from kequn.segments.export import mask_personal_fields
from kequn.segments.models import MembershipChange, SegmentMember, SegmentSize

SHANGHAI = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "上海"}]}


def member_names(segment):
    return set(
        SegmentMember.objects.filter(segment=segment).values_list("customer__name", flat=True)
    )


def test_dynamic_follows_data_and_static_keeps_snapshot(shop):
    dynamic = services.create_segment("Dynamic", SHANGHAI, by=system_actor("test"))
    static = services.create_segment("Static", SHANGHAI, kind="static", by=system_actor("test"))
    assert member_names(dynamic) == member_names(static) == {"王", "赵"}
    shop.li.city = "上海"
    shop.li.save()
    shop.zhao.city = "杭州"
    shop.zhao.save()
    services.refresh_all(by=system_actor("test"))
    assert member_names(dynamic) == {"王", "李"}
    assert member_names(static) == {"王", "赵"}
    services.snapshot_segment(static, by=system_actor("test"))
    assert member_names(static) == {"王", "李"}


def test_membership_history_records_entries_and_exits(shop):
    segment = services.create_segment("Dynamic", SHANGHAI, by=system_actor("test"))
    shop.zhao.city = "杭州"
    shop.zhao.save()
    shop.chen.city = "上海"
    shop.chen.save()
    result = services.refresh_segment(segment, by=system_actor("test"))
    assert (result.size, result.entered, result.left) == (2, 1, 1)
    changes = {
        (c.customer.name, c.change) for c in MembershipChange.objects.filter(segment=segment)
    }
    assert changes == {("王", "entered"), ("赵", "entered"), ("赵", "left"), ("陈", "entered")}
    assert list(SegmentSize.objects.filter(segment=segment).values_list("size", flat=True)) == [
        2,
        2,
    ]
    segment.refresh_from_db()
    assert segment.member_count == 2


def test_segment_used_by_another_cannot_be_deleted(shop):
    a = services.create_segment("A", SHANGHAI, by=system_actor("test"))
    services.create_segment(
        "B",
        {"match": "all", "conditions": [{"field": "in_segment", "operator": "in", "value": a.pk}]},
        by=system_actor("test"),
    )
    with translation.override("en"), pytest.raises(ValidationError, match="refers to this segment"):
        services.delete_segment(a, by=system_actor("test"))


def test_tag_segment_members_and_file_of_ids(shop):
    segment = services.create_segment("Shanghai", SHANGHAI, by=system_actor("test"))
    tag = services.get_or_create_tag("Campaign A", "Campaigns", by=system_actor("test"))
    assert services.tag_segment_members(segment, tag, by=system_actor("test")) == 2
    assert services.tag_segment_members(segment, tag, by=system_actor("test")) == 0  # idempotent
    Identity.objects.create(customer=shop.acme, kind="external", system="shopify", value="S-9")
    ids, unknown = services.resolve_customer_ids(
        services.read_id_values("external_id\nS-9\nS-404\n"), "shopify"
    )
    assert ids == [shop.acme.pk] and unknown == ["S-404"]
    ids, unknown = services.resolve_customer_ids(
        services.read_id_values(f"id\n{shop.li.pk}\n999999\n")
    )
    assert services.tag_customer_ids(tag, ids, by=system_actor("test")) == 1
    names = set(CustomerTag.objects.filter(tag=tag).values_list("customer__name", flat=True))
    assert names == {"王", "赵", "李"}
    assert tag.group.name == "Campaigns"


def test_tag_rule_keeps_tag_equal_to_rule(shop):
    tag_rule = services.save_tag_rule("Shanghai people", SHANGHAI, "Geo", by=system_actor("test"))
    assert tag_rule.tag.kind == Tag.Kind.RULE
    assert set(tag_rule.tag.customers.values_list("name", flat=True)) == {"王", "赵"}
    shop.zhao.city = "杭州"
    shop.zhao.save()
    services.refresh_all(by=system_actor("test"))
    assert set(tag_rule.tag.customers.values_list("name", flat=True)) == {"王"}


def test_tag_command_from_file(shop, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "ids.csv"
    path.write_text(f"{shop.wang.pk}\n{shop.li.pk}\n")
    call_command("segments", "tag", "--tag", "From file", "--file", str(path))
    assert set(Tag.objects.get(name="From file").customers.values_list("name", flat=True)) == {
        "王",
        "李",
    }


def test_tag_command_names_its_operator(shop, tmp_path, django_user_model):
    from django.core.management import CommandError, call_command

    operator = django_user_model.objects.create_user("mei", password="x", is_superuser=True)
    path = tmp_path / "ids.csv"
    path.write_text(f"{shop.chen.pk}\n")
    call_command("segments", "tag", "--tag", "Called", "--file", str(path), "--by", "mei")
    link = CustomerTag.objects.get(tag__name="Called")
    assert (link.customer_id, link.added_by_id) == (shop.chen.pk, operator.pk)
    with pytest.raises(CommandError, match="--by nobody"):
        call_command("segments", "tag", "--tag", "x", "--file", str(path), "--by", "nobody")


def test_sql_command_prints_the_query_and_its_parameters_apart(shop, capsys):
    import json

    from django.core.management import call_command

    rule = {"match": "all", "conditions": [{"field": "name", "operator": "eq", "value": "王'; --"}]}
    call_command("segments", "sql", json.dumps(rule, ensure_ascii=False))
    sql, params = capsys.readouterr().out.strip().split("\n")
    assert "王" not in sql and "c.name = ?" in sql
    assert "王'; --" in json.loads(params)


def test_masking_hook():
    class Plain:
        is_superuser = False

    class Super:
        is_superuser = True

    row = {
        "phone": "+8613800138000",
        "email": "zhang@example.com",
        "birthday": "1990-05-04",
        "address": "上海 浦东",
    }
    masked = mask_personal_fields(Plain(), row)
    assert masked == {
        "phone": "138****8000",
        "email": "z***@example.com",
        "birthday": "****-05-04",
        "address": "****",
    }
    assert mask_personal_fields(Super(), row) == row
