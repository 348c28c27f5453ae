"""Rules compile to the right members (SQL, checked against an ORM oracle); bad rules say where."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from kequn.security.actors import system_actor
from kequn.segments import services
from kequn.segments.rules import RuleError, validate_rule
from kequn.segments.sqlgen import to_paramstyle
from tests.segments.orm_oracle import make_context, select_customers


def rule(*conditions, match="all", negate=False):
    return {"match": match, "negate": negate, "conditions": list(conditions)}


def cond(field, operator, value=None, **extra):
    c = {"field": field, "operator": operator, **extra}
    if value is not None:
        c["value"] = value
    return c


CASES = [
    (rule(cond("city", "eq", "上海")), {"王", "赵"}),
    (rule(cond("city", "in", ["杭州", "北京"])), {"李", "Acme", "陈"}),
    (rule(cond("city", "eq", "上海"), cond("gender", "eq", "f")), {"王", "赵"}),
    (rule(cond("kind", "eq", "company")), {"Acme"}),
    (rule(cond("industry", "is_not_empty")), {"Acme"}),
    (rule(cond("age", "gte", 30)), {"王", "李"}),
    (rule(cond("age", "between", [25, 40])), {"王"}),
    (rule(cond("age", "lt", 30)), {"赵"}),
    (rule(cond("bought_product", "any_of", ["P-1"], days=30)), {"王", "Acme"}),
    (rule(cond("bought_product", "any_of", ["P-1"])), {"王", "李", "Acme"}),
    (rule(cond("bought_product", "none_of", ["P-1"])), {"赵", "陈"}),
    # The category tree: buying a case counts as buying an accessory; cancelled orders do not.
    (rule(cond("bought_category", "any_of", ["accessories"])), {"王"}),
    (rule(cond("order_count", "gte", 2)), {"王", "Acme"}),
    (rule(cond("order_count", "gte", 2, days=365)), {"王", "Acme"}),
    (rule(cond("order_count", "eq", 0)), {"赵", "陈"}),
    (rule(cond("order_count", "eq", 1, days=60)), set()),
    (rule(cond("spend", "gt", 10000)), {"Acme"}),
    (rule(cond("spend", "between", [3000, 3100], days=365)), {"王", "李"}),
    (rule(cond("last_order", "within_days", 15)), {"王"}),
    (rule(cond("last_order", "not_within_days", 100)), {"李", "赵", "陈"}),
    (rule(cond("last_order", "is_empty")), {"赵", "陈"}),
    (rule(cond("event", "any_of", ["App Opened"], days=90)), {"陈"}),
    (rule(cond("event", "any_of", ["App Opened"], days=30)), set()),
    (rule(cond("browsed_not_bought", "is", True, days=7)), {"赵", "李"}),
    (rule(cond("rfm_segment", "eq", "champions")), {"王", "Acme"}),
    (rule(cond("lifecycle_stage", "in", ["at_risk", "churned"])), {"李"}),
    (rule(cond("clv", "gte", 1000)), {"王", "Acme"}),
    (rule(cond("churn_percentile", "gt", 80)), {"李"}),
    (rule(cond("tag", "any_of", ["VIP"])), {"王", "Acme"}),
    (rule(cond("tag", "all_of", ["VIP", "Fan"])), {"王"}),
    (rule(cond("tag", "none_of", ["VIP", "Fan"])), {"李", "陈"}),
    (rule(cond("consent", "is", True, channel="sms", purpose="marketing")), {"王", "赵"}),
    (
        rule(cond("consent", "is", False, channel="sms", purpose="marketing")),
        {"李", "Acme", "陈"},
    ),
    # Column and score conditions beside per-customer lookups: the SQL picks candidates first.
    (
        rule(
            cond("city", "in", ["上海", "北京"]),
            cond("order_count", "gte", 2, days=365),
            cond("rfm_segment", "eq", "champions"),
            cond("consent", "is", True, channel="sms", purpose="marketing"),
        ),
        {"王"},
    ),
    (rule(cond("city", "eq", "上海"), cond("tag", "none_of", ["VIP"])), {"赵"}),
    (rule(cond("kind", "eq", "person"), cond("bought_product", "none_of", ["P-1"])), {"赵", "陈"}),
    (rule(cond("age", "gte", 30), cond("bought_product", "none_of", ["P-1"])), set()),
    (
        rule(
            cond("lifecycle_stage", "in", ["at_risk"]), cond("last_order", "not_within_days", 100)
        ),
        {"李"},
    ),
    (
        rule(
            rule(cond("city", "eq", "上海"), cond("city", "eq", "北京"), match="any"),
            cond("consent", "is", True, channel="sms", purpose="marketing"),
        ),
        {"王", "赵"},
    ),
    # Nested groups: Shanghai women OR (companies that spent > 10k), but not tagged Fan.
    (
        rule(
            rule(
                rule(cond("city", "eq", "上海"), cond("gender", "eq", "f")),
                rule(cond("kind", "eq", "company"), cond("spend", "gt", 10000)),
                match="any",
            ),
            rule(cond("tag", "any_of", ["Fan"]), negate=True),
        ),
        {"Acme"},
    ),
]


def names(queryset):
    return set(queryset.values_list("name", flat=True))


def test_rules_select_expected_members_on_sql_and_the_orm_oracle(shop):
    ctx = make_context(lookup=services.lookup_segment)
    for i, (the_rule, expected) in enumerate(CASES):
        services.check_rule(the_rule)
        assert names(select_customers(the_rule, ctx)) == expected, (i, the_rule)
        assert names(services.select_rule_members(the_rule)) == expected, (i, the_rule)
        for candidates_first in (True, False):
            sql, params = services.compile_member_sql(the_rule, candidates_first=candidates_first)
            with connection.cursor() as cursor:
                query = f"SELECT name FROM customers_customer WHERE id IN ({sql})"
                cursor.execute(query, params)
                assert {row[0] for row in cursor.fetchall()} == expected, (i, sql)


def test_counts_agree_with_members(shop):
    split = [r for r, _ in CASES if "MATERIALIZED" in services.compile_member_sql(r)[0]]
    assert len(split) >= 5  # the candidates-first form is among the cases above
    for i, (the_rule, expected) in enumerate(CASES):
        assert services.count_members(the_rule) == len(expected), (i, the_rule)


def test_merged_and_restricted_are_not_counted(shop):
    mixed = rule(
        cond("city", "eq", "上海"), cond("consent", "is", True, channel="sms", purpose="marketing")
    )
    assert services.count_members(mixed) == 2
    shop.zhao.merged_into = shop.wang
    shop.zhao.save()
    shop.wang.processing_restricted = True
    shop.wang.save()
    assert services.count_members(mixed) == 0


def test_merged_records_are_never_members(shop):
    shop.zhao.merged_into = shop.wang
    shop.zhao.save()
    assert names(services.select_rule_members(rule(cond("city", "eq", "上海")))) == {"王"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            rule(cond("city", "eq", "上海"), cond("citty", "eq", "x")),
            "rules.conditions[1]: unknown field 'citty'",
        ),
        (
            rule(cond("city", "eq", "a"), rule(cond("city", "eq", "b"), cond("citty", "eq", "x"))),
            "rules.conditions[1].conditions[1]: unknown field 'citty'",
        ),
        (
            rule(cond("city", "gt", "a")),
            "rules.conditions[0]: operator 'gt' does not apply to text field 'city'",
        ),
        (
            rule(cond("clv", "contains", "a")),
            "operator 'contains' does not apply to number field 'clv'",
        ),
        (rule(cond("clv", "gt", "many")), "rules.conditions[0]: field 'clv' compares numbers"),
        (rule(), "rules: empty group"),
        (rule(cond("city", "eq", "a"), rule()), "rules.conditions[1]: empty group"),
        (rule(cond("rfm_segment", "eq", "champs")), "'champs' is not a value of 'rfm_segment'"),
        (rule(cond("city", "in", [])), "needs a non-empty list"),
        (rule(cond("city", "eq", "a", days=3)), "takes no 'days' window"),
        (rule(cond("consent", "is", True)), "consent needs 'channel'"),
        (rule(cond("age", "between", [1])), "list of two values"),
        (rule(cond("in_segment", "in", 999)), "segment #999 does not exist"),
        (
            {"match": "some", "conditions": [cond("city", "eq", "a")]},
            "'match' must be 'all' or 'any'",
        ),
        ([1, 2], "rules: a rule is a group"),
    ],
)
def test_validation_names_the_rule(db, bad, message):
    with pytest.raises(ValidationError) as info:
        services.check_rule(bad)
    assert any(message in m for m in info.value.messages), info.value.messages


def test_pure_validation_lists_every_problem():
    with pytest.raises(RuleError) as info:
        validate_rule(rule(cond("citty", "eq", "x"), cond("clv", "gt", "y")))
    assert len(info.value.errors) == 2


def test_cycles_are_refused_directly_and_transitively(shop):
    a = services.create_segment("A", rule(cond("city", "eq", "上海")), by=system_actor("test"))
    b = services.create_segment("B", rule(cond("in_segment", "in", a.pk)), by=system_actor("test"))
    with pytest.raises(ValidationError) as info:
        services.update_segment(
            a, {"rules": rule(cond("in_segment", "in", a.pk))}, by=system_actor("test")
        )
    assert "rules.conditions[0]: cycle" in info.value.messages[0]
    with pytest.raises(ValidationError) as info:
        services.update_segment(
            a,
            {"rules": rule(cond("city", "eq", "x"), cond("in_segment", "in", b.pk))},
            by=system_actor("test"),
        )
    assert "rules.conditions[1]: cycle" in info.value.messages[0]
    assert f"#{a.pk} → #{b.pk} → #{a.pk}" in info.value.messages[0]


def test_in_segment_uses_live_rule_of_dynamic_and_snapshot_of_static(shop):
    shanghai = services.create_segment(
        "Shanghai", rule(cond("city", "eq", "上海")), by=system_actor("test")
    )
    frozen = services.create_segment(
        "Frozen", rule(cond("city", "eq", "上海")), kind="static", by=system_actor("test")
    )
    shop.chen.city = "上海"
    shop.chen.save()
    live = names(services.select_rule_members(rule(cond("in_segment", "in", shanghai.pk))))
    snap = names(services.select_rule_members(rule(cond("in_segment", "in", frozen.pk))))
    assert live == {"王", "赵", "陈"}
    assert snap == {"王", "赵"}
    outside = names(services.select_rule_members(rule(cond("in_segment", "not_in", frozen.pk))))
    assert outside == {"李", "Acme", "陈"}


def test_unknown_tag_names_the_rule(shop):
    with pytest.raises(ValidationError) as info:
        services.count_rule(rule(cond("city", "eq", "a"), cond("tag", "any_of", ["Nope"])))
    assert "rules.conditions[1]: unknown tag 'Nope'" in info.value.messages[0]


AWKWARD = "O'Brien \\ 100% _x_ ? $1 %s -- 上海\"; DROP TABLE customers_customer; --"


@pytest.mark.parametrize("operator", ["eq", "contains", "starts_with"])
def test_rule_values_are_bound_not_spliced(shop, operator):
    shop.chen.name = AWKWARD
    shop.chen.save()
    the_rule = rule(cond("name", operator, AWKWARD), cond("order_count", "eq", 0))
    services.check_rule(the_rule)
    sql, params = services.compile_member_sql(the_rule)
    assert "O'Brien" not in sql and "100" not in sql and "上海" not in sql
    assert "?" not in sql and "$" not in sql and sql.count("%") == sql.count("%s")
    assert any(isinstance(p, str) and "O'Brien" in p for p in params)
    assert names(services.select_rule_members(the_rule)) == {AWKWARD}
    assert services.count_members(the_rule) == 1
    # % and _ in a value are letters, not wildcards (as the ORM's icontains reads them).
    near = AWKWARD.replace("100%", "1000").replace("_x_", "axb")
    shop.li.name = near
    shop.li.save()
    assert services.count_members(rule(cond("name", operator, AWKWARD))) == 1


def test_paramstyles_for_other_drivers():
    sql = "SELECT 1 WHERE a = %s AND b IN (%s, %s)"
    assert to_paramstyle(sql, "format") == sql
    assert to_paramstyle(sql, "qmark") == "SELECT 1 WHERE a = ? AND b IN (?, ?)"
    assert to_paramstyle(sql, "numeric_dollar") == "SELECT 1 WHERE a = $1 AND b IN ($2, $3)"


def test_generated_sql_runs_on_duckdb(shop):
    duckdb = pytest.importorskip("duckdb")
    pd = pytest.importorskip("pandas")
    con = duckdb.connect()
    tables = {
        "customers_customer": "id, name, city, merged_into_id, processing_restricted",
        "commerce_order": "id, customer_id, status, ordered_at, total_amount",
    }
    with connection.cursor() as cursor:
        for table, columns in tables.items():
            cursor.execute(f"SELECT {columns} FROM {table}")
            frame = pd.DataFrame(cursor.fetchall(), columns=[c.strip() for c in columns.split(",")])
            if "ordered_at" in frame:
                frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True)
                frame["total_amount"] = frame["total_amount"].astype(float)
            frame["processing_restricted"] = frame.get("processing_restricted", False)
            con.register(f"{table}_frame", frame)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_frame")
    the_rule = rule(cond("city", "in", ["上海", "北京"]), cond("order_count", "gte", 2, days=365))
    sql, params = services.compile_member_sql(the_rule)
    found = {row[0] for row in con.execute(to_paramstyle(sql, "qmark"), params).fetchall()}
    assert found == {shop.wang.pk, shop.acme.pk}
