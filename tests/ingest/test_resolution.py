from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from kequn.customers.models import Customer, Identity
from kequn.ingest import duplicates
from kequn.ingest.merging import accept_match, resolve_probabilistic, undo_merge
from kequn.ingest.models import MatchCandidate, Merge
from kequn.ingest.runs import import_file
from kequn.security.actors import system_actor

pytestmark = pytest.mark.django_db


def test_splink_resolution_meets_f1_on_corrupted_duplicates(tmp_path):
    people = duplicates.make_people(400, seed=3)
    import_file(
        duplicates.write_people(people, tmp_path / "base.csv"),
        "customers",
        source="base",
        by=system_actor("tests"),
    )
    duplicates.emit_duplicates(people, tmp_path / "d.csv", tmp_path / "t.csv", 80, seed=4)
    import_file(tmp_path / "d.csv", "customers", source="dup", by=system_actor("tests"))
    before = duplicates.evaluate(people, tmp_path / "t.csv", "dup", "base")
    summary = resolve_probabilistic(upper=0.95, lower=0.6, by=system_actor("tests"))
    after = duplicates.evaluate(people, tmp_path / "t.csv", "dup", "base")
    assert summary.merged > 10
    assert before.recall < 0.8 <= after.recall
    assert after.precision >= 0.95 and after.f1 >= 0.95
    assert (
        Merge.objects.filter(rule__startswith="probabilistic", score__gte=0.95).count()
        == summary.merged
    )
    # Running again (retrained on the merged data) keeps the quality.
    resolve_probabilistic(upper=0.95, lower=0.6, by=system_actor("tests"))
    assert duplicates.evaluate(people, tmp_path / "t.csv", "dup", "base").f1 >= 0.95


def test_review_queue_accept_and_undo_and_rejected_pairs_stay_apart(tmp_path):
    a = Customer.objects.create(name="张伟", city="上海市")
    b = Customer.objects.create(name="张玮", city="上海市")
    Identity.objects.create(customer=b, kind="email", value="b@x.cn")
    candidate = MatchCandidate.objects.create(left=a, right=b, score=0.8)
    reviewer = User.objects.create_user("rev")
    merge = accept_match(candidate, by=reviewer)
    b.refresh_from_db()
    assert b.merged_into_id == a.pk and merge.created_by == reviewer
    assert Identity.objects.get(value="b@x.cn").customer_id == a.pk
    undo_merge(merge, by=reviewer)
    b.refresh_from_db()
    candidate.refresh_from_db()
    assert b.merged_into_id is None and candidate.status == "rejected"
    assert Identity.objects.get(value="b@x.cn").customer_id == b.pk


def test_resolve_command_report_and_undo(tmp_path):
    out = StringIO()
    call_command("resolve", "report", "--json", stdout=out)
    assert '"undone": 0' in out.getvalue()
    a, b = Customer.objects.create(name="A"), Customer.objects.create(name="B")
    from kequn.ingest.merging import merge_customers

    first = merge_customers(a, b, rule="manual", by=system_actor("tests"))
    c = Customer.objects.create(name="C")
    second = merge_customers(a, c, rule="manual", by=system_actor("tests"))
    from django.core.management import CommandError

    call_command("resolve", "undo", str(second.pk), stdout=StringIO())
    call_command("resolve", "undo", str(first.pk), stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("resolve", "undo", str(first.pk), stdout=StringIO())
    assert not Customer.objects.exclude(merged_into=None).exists()
