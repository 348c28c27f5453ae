"""`kequn journey list|show|pause|resume|create|run`."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kequn.journeys.models import Journey
from kequn.journeys.services import fire_trigger, run_due
from tests.factories import make_customer
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("journey", *args, stdout=out)
    return out.getvalue()


def test_create_list_show_pause_resume(tmp_path):
    spec = tmp_path / "win-back.json"
    spec.write_text(
        json.dumps(
            {
                "name": "挽回",
                "trigger_kind": "stage_changed",
                "trigger_config": {"to": "at_risk"},
                "steps": [
                    {"id": "w", "kind": "wait", "config": {"days": 2}, "next": "t"},
                    {"id": "t", "kind": "tag", "config": {"tag": "win-back"}},
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    journey_id = int(run("create", str(spec), "--activate"))
    journey = Journey.objects.get(pk=journey_id)
    fire_trigger(
        kind="stage_changed", customer_ids=[make_customer().pk], payload={"to": "at_risk"}, by=BY
    )
    run_due(by=BY)
    assert f"{journey_id}  active" in run("list")
    shown = json.loads(run("show", str(journey_id), "--json"))
    assert shown["entered"] == 1 and shown["steps"][0]["here"] == 1
    assert "[w] Wait 2d: passed 0, here 1 -> t" in run("show", str(journey_id))
    assert run("pause", str(journey_id)).strip().endswith("paused")
    assert run("resume", str(journey_id)).strip().endswith("active")
    journey.refresh_from_db()
    assert journey.status == "active"


def test_bad_input_gets_one_line(tmp_path):
    with pytest.raises(CommandError, match="no journey #999"):
        run("show", "999")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "trigger_kind": "event", "steps": [], "colour": 1}')
    with pytest.raises(CommandError, match="unknown key\\(s\\) colour"):
        run("create", str(bad))
    bad.write_text('{"name": "x", "trigger_kind": "event", "trigger_config": {}, "steps": []}')
    with pytest.raises(CommandError, match='trigger: needs "event"'):
        run("create", str(bad))
    with pytest.raises(CommandError, match="cannot read the file"):
        run("create", str(tmp_path / "missing.json"))
