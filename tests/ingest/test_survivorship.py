"""Imports never silently overwrite a person: conflicting matches, source trust, empty values."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from kequn.customers.models import Customer, Identity
from kequn.customers.services import IdentityInput, create_customer, update_customer
from kequn.ingest.merging import accept_match
from kequn.ingest.models import ImportRun, MatchCandidate
from kequn.ingest.runs import import_file
from kequn.ingest.survivorship import find_conflicts, may_overwrite, rank_source
from kequn.security.actors import system_actor

pytestmark = pytest.mark.django_db


def run(path, *extra) -> dict:
    out = StringIO()
    call_command("import", "customers", str(path), *extra, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_phone_of_another_person_does_not_rename_them(write):
    chen = create_customer(
        {"name": "陈建", "city": "深圳"}, [IdentityInput("phone", "13800004767")], by=None
    )
    summary = run(write("c.csv", "手机,姓名,城市\n13800004767,王芳,广州\n"))
    assert (summary["review"], summary["updated"], summary["inserted"]) == (1, 0, 0)
    chen.refresh_from_db()
    assert (chen.name, chen.city) == ("陈建", "深圳")
    assert Identity.objects.get(kind="phone").customer_id == chen.pk  # the number is not stolen
    wang = Customer.objects.get(name="王芳")
    assert wang.city == "广州" and not wang.identities.exists()
    candidate = MatchCandidate.objects.get()
    assert (candidate.left_id, candidate.right_id, candidate.status) == (
        chen.pk,
        wang.pk,
        "pending",
    )
    assert candidate.details["reason"] == "shared_identity"
    assert candidate.details["name"] == ["陈建", "王芳"]
    row = summary["rows"][0]
    assert row["outcome"] == "review" and "陈建" in row["note"] and "王芳" in row["note"]
    # Importing the same file again finds the person split off last time: nothing new.
    again = run(write("c.csv", "手机,姓名,城市\n13800004767,王芳,广州\n"))
    assert (again["unchanged"], again["review"], again["inserted"]) == (1, 0, 0)
    assert Customer.objects.filter(name="王芳").count() == 1
    assert MatchCandidate.objects.count() == 1


def test_accepting_the_review_item_merges_and_keeps_the_stored_name(write):
    chen = create_customer(
        {"name": "陈建"}, [IdentityInput("phone", "13800004767")], by=system_actor("tests")
    )
    run(write("c.csv", "手机,姓名,邮箱\n13800004767,王芳,wf@x.cn\n"))
    wang = Customer.objects.get(name="王芳")
    assert Identity.objects.get(kind="email").customer_id == wang.pk  # its own email goes along
    accept_match(MatchCandidate.objects.get(), by=None)
    chen.refresh_from_db()
    assert chen.name == "陈建" and Identity.objects.get(kind="email").customer_id == chen.pk


def test_two_names_sharing_one_phone_in_a_file_stay_two_people(write):
    text = "手机,姓名\n13900001111,张小明\n13900001111,李雷\n13900001111,张小明\n13900001111,李雷\n"
    summary = run(write("c.csv", text))
    assert (summary["inserted"], summary["review"], summary["merged"]) == (1, 1, 2)
    assert Customer.objects.count() == 2
    zhang, li = Customer.objects.get(name="张小明"), Customer.objects.get(name="李雷")
    assert Identity.objects.get(kind="phone").customer_id == zhang.pk
    assert MatchCandidate.objects.filter(left=zhang, right=li).exists()
    assert [r["outcome"] for r in summary["rows"]] == ["inserted", "review", "merged", "merged"]


def test_two_agreeing_identities_are_a_strong_match(write):
    run(write("a.csv", "email,phone,name\na@x.cn,13100131000,Ann\n"))
    summary = run(write("c.csv", "email,phone,name\na@x.cn,13100131000,Ann Lee\n"))
    assert (summary["updated"], summary["review"]) == (1, 0)
    ann = Customer.objects.get()
    assert ann.name == "Ann Lee" and not MatchCandidate.objects.exists()


def test_empty_cells_never_overwrite(write):
    run(write("a.csv", "email,name,city,gender\na@x.cn,Ann,杭州,女\n"))
    summary = run(write("b.csv", "email,name,city,gender\na@x.cn,,,\n"))
    assert summary["unchanged"] == 1
    ann = Customer.objects.get()
    assert (ann.name, ann.city, ann.gender) == ("Ann", "杭州", "f")


def test_a_back_office_edit_outranks_any_import(write):
    run(write("a.csv", "email,name,city\na@x.cn,Ann,杭州\n"))
    ann = Customer.objects.get()
    update_customer(ann, {"city": "Shenzhen"}, by=None)
    ann.refresh_from_db()
    assert ann.city == "深圳" and ann.field_sources["city"] == "backoffice"
    summary = run(write("b.csv", "email,name,city\na@x.cn,Ann,上海\n"))
    assert summary["unchanged"] == 1
    assert "城市" in summary["rows"][0]["note"]  # the field by its label, in the default language
    ann.refresh_from_db()
    assert ann.city == "深圳"


def test_source_trust_order_decides_between_systems(write, monkeypatch):
    monkeypatch.setenv("KEQUN_SOURCE_TRUST", "hubspot,*")
    run(write("a.csv", "email,name,city\na@x.cn,Ann,杭州\n"), "--source", "shopify")
    # A source trusted less keeps its hands off; one trusted more replaces the value.
    run(write("b.csv", "email,name,city\na@x.cn,Ann,上海\n"), "--source", "fxiaoke")
    assert Customer.objects.get().city == "杭州"
    run(write("c.csv", "email,name,city\na@x.cn,Ann,上海\n"), "--source", "hubspot")
    ann = Customer.objects.get()
    assert ann.city == "上海" and ann.field_sources["city"] == "hubspot"
    # The same source may correct its own value (a newer export of the same system).
    run(write("d.csv", "email,name,city\na@x.cn,Ann,广州\n"), "--source", "hubspot")
    assert Customer.objects.get().city == "广州"


def test_trust_ranks_and_conflict_rules():
    order = ("backoffice", "api", "*", "events")
    assert (
        rank_source("backoffice", order)
        > rank_source("shopify", order)
        > rank_source("events", order)
    )
    assert rank_source("shopify", order) == rank_source("hubspot", order)
    assert not may_overwrite(current_source="shopify", incoming_source="hubspot", order=order)
    assert may_overwrite(current_source="events", incoming_source="hubspot", order=order)
    assert find_conflicts({"name": "Ada Lovelace"}, {"name": "ada  lovelace"}) == []
    assert find_conflicts({"name": "陈建", "gender": "m"}, {"name": "王芳", "gender": "f"}) == [
        "name",
        "gender",
    ]
    assert find_conflicts({"gender": "m"}, {"gender": "o"}) == []
    assert find_conflicts({"name": ""}, {"name": "王芳"}) == []


def test_dry_run_previews_every_row_and_stores_nothing(write):
    run(write("a.csv", "手机,姓名,城市\n13800004767,陈建,深圳\n"))
    chen = Customer.objects.get()
    text = (
        "手机,邮箱,姓名,城市\n"
        "13800004767,,陈建,广州\n"  # updated: city 深圳 → 广州
        "13800004767,,王芳,\n"  # sent to review
        "13700000000,new@x.cn,新人,上海\n"  # created
        ",bad-email,坏,\n"  # quarantined
    )
    summary = import_file(write("d.csv", text), "customers", dry_run=True, by=system_actor("tests"))
    outcomes = {r["row"]: r for r in summary.rows}
    assert outcomes[2]["outcome"] == "updated"
    assert outcomes[2]["changes"] == [["city", "深圳", "广州"]]
    assert outcomes[3]["outcome"] == "review"
    assert outcomes[4]["outcome"] == "inserted" and outcomes[4]["new"]
    assert ["city", "", "上海"] in outcomes[4]["changes"]
    assert outcomes[5]["outcome"] == "quarantined" and outcomes[5]["field"] == "email"
    chen.refresh_from_db()
    assert chen.city == "深圳" and Customer.objects.count() == 1
    assert not MatchCandidate.objects.exists()
    assert ImportRun.objects.get(pk=summary.run_id).records == {}


def test_real_run_keeps_the_ids_it_touched(write):
    chen = create_customer(
        {"name": "陈建"}, [IdentityInput("phone", "13800004767")], by=system_actor("tests")
    )
    summary = import_file(
        write("r.csv", "手机,姓名\n13800004767,王芳\n13700000000,新人\n"),
        "customers",
        by=system_actor("tests"),
    )
    records = ImportRun.objects.get(pk=summary.run_id).records
    wang, new = Customer.objects.get(name="王芳"), Customer.objects.get(name="新人")
    assert records == {"review": [wang.pk], "inserted": [new.pk]}
    assert all(chen.pk not in ids for ids in records.values())
