"""Deals and activities imported from Salesforce, HubSpot, Zoho and Fxiaoke exports."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from kequn.sales.importing import import_crm_file
from kequn.sales.models import Activity, Deal
from tests.sales.helpers import SYSTEM, in_days, make_pipeline, make_rep

pytestmark = pytest.mark.django_db


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_salesforce_opportunities_with_a_refused_row(tmp_path):
    make_pipeline()
    rep = make_rep("sf.rep")
    close = in_days(30).isoformat()
    path = write(
        tmp_path,
        "opps.csv",
        "Opportunity ID,Opportunity Name,Account Name,Amount,Close Date,Stage,Opportunity Owner\n"
        f'006A,Renewal 2027,深圳华强有限公司,"¥120,000.00",{close},Proposal,sf.rep\n'
        f"006B,Big win,Acme Ltd,50000,{close},Closed Won,sf.rep\n"
        f"006C,No stage,Acme Ltd,100,{close},Dreaming,sf.rep\n",
    )
    summary = import_crm_file(path, "deals", preset="salesforce", by=SYSTEM)
    assert (summary.imported, summary.updated) == (2, 0)
    assert (
        len(summary.errors) == 1 and "row 4: stage: 'Dreaming' is not a stage" in summary.errors[0]
    )
    assert "Dreaming" in summary.refused_file.read_text(encoding="utf-8-sig")
    deal = Deal.objects.get(external_ref="salesforce:006A")
    assert (
        deal.amount == 120000
        and deal.owner_id == rep.pk
        and deal.account.name == "深圳华强有限公司"
    )
    assert Deal.objects.get(external_ref="salesforce:006B").status == Deal.Status.WON
    again = import_crm_file(path, "deals", preset="salesforce", by=SYSTEM)
    assert again.imported == 0 and again.updated == 2


def test_fxiaoke_followups_as_activities(tmp_path):
    make_rep("王销售")
    path = write(
        tmp_path,
        "跟进记录.csv",
        "记录ID,跟进方式,跟进时间,客户名称,负责人,跟进内容,地点\n"
        "F1,拜访,2026-11-02 10:00,广州恒通数码有限公司,王销售,介绍新机型,天河门店\n"
        "F2,电话,2026-11-03 09:30,广州恒通数码有限公司,王销售,确认报价,\n"
        "F3,飞鸽,2026-11-03 09:30,广州恒通数码有限公司,王销售,,\n",
    )
    summary = import_crm_file(path, "activities", preset="fxiaoke", by=SYSTEM)
    assert summary.imported == 2 and "kind: '飞鸽'" in summary.errors[0]
    visit = Activity.objects.get(external_ref="fxiaoke:F1")
    assert visit.kind == "visit" and visit.location == "天河门店"


def test_hubspot_deals_through_the_command(tmp_path, capsys):
    make_pipeline()
    path = write(
        tmp_path,
        "hubspot.csv",
        "Record ID,Deal Name,Associated Company,Amount,Close Date,Deal Stage\n"
        f"1,Dealer stock,Star Co,9000,{in_days(10).isoformat()},Qualification\n",
    )
    call_command("sales", "import", "deals", str(path), "--preset", "hubspot")
    assert "1 imported" in capsys.readouterr().out
    missing = write(tmp_path, "bad.csv", "Deal Name,Amount\nx,1\n")
    with pytest.raises(CommandError, match="no column for close_date"):
        call_command("sales", "import", "deals", str(missing))
