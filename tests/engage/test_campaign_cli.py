"""kequn campaign create / send / report, as a user runs them."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kequn.customers.services import record_consent
from kequn.security.actors import system_actor
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.factories import make_customer

pytest_plugins = ["tests.engage.peers"]  # the SMTP sink fixtures
BY = system_actor("tests")


def run(*args: str) -> str:
    out = StringIO()
    call_command("campaign", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_send_and_report_from_the_command_line(db, email_settings, settings, tmp_path):
    settings.KEQUN_QUIET_HOURS = "off"
    settings.KEQUN_MARKETING_CAPS = "off"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    people = [make_customer(email=f"cli{i}@example.com") for i in range(5)]
    for person in people[:4]:
        record_consent(person, "email", "marketing", True, "tests", by=BY)
    segment = Segment.objects.create(name="CLI audience", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)
    body = tmp_path / "body.html"
    body.write_text("<p>{{ salutation }}，春季特惠</p>", encoding="utf-8")

    created = json.loads(
        run(
            "create",
            "--name",
            "CLI spring",
            "--segment",
            str(segment.pk),
            "--channel",
            "email",
            "--subject",
            "春季特惠",
            "--body",
            str(body),
            "--holdout-percent",
            "0",
            "--json",
        )
    )
    campaign_id = str(created["id"])
    sent = run("send", campaign_id)
    assert "sent 4" in sent and "no_consent 1" in sent
    assert len(email_settings.messages) == 4
    report = json.loads(run("report", campaign_id, "--json"))
    assert report["sent"] == 4 and report["skipped"] == {"no_consent": 1}
    text = run("report", campaign_id)
    assert "skipped (no_consent): 1" in text and "conversion uplift" in text


def test_bad_input_is_one_line_naming_the_fix(db, tmp_path):
    segment = Segment.objects.create(name="CLI bad", kind=Segment.Kind.STATIC)
    with pytest.raises(CommandError, match=r"--body .*cannot read"):
        run(
            "create",
            "--name",
            "x",
            "--segment",
            str(segment.pk),
            "--body",
            str(tmp_path / "no.html"),
        )
    with pytest.raises(CommandError, match="--segment 999999: no such segment"):
        run("create", "--name", "x", "--segment", "999999", "--body", str(tmp_path / "no.html"))
    bad = tmp_path / "bad.html"
    bad.write_text("<p>{{ nosuch }}</p>", encoding="utf-8")
    with pytest.raises(CommandError, match="nosuch"):
        run("create", "--name", "x", "--segment", str(segment.pk), "--body", str(bad))
    with pytest.raises(CommandError, match=r"no campaign #424242"):
        run("report", "424242")
