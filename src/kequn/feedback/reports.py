"""The survey report as tables for its Excel and PDF files (built by kequn.security.reportfiles)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from kequn.security.reportfiles import Table


def build_report_tables(context: dict[str, Any]) -> list[Table]:
    """Return the survey report page's figures (summary, months, topics, loop) as tables."""
    summary, rate, loop = context["summary"], context["rate"], context["loop"]
    return [
        (
            _("Summary"),
            [_("Figure"), _("Value")],
            [
                [_("Answers"), summary["n"]],
                ["NPS", summary["nps"]],
                [_("Promoters"), summary["promoters"]],
                [_("Passives"), summary["passives"]],
                [_("Detractors"), summary["detractors"]],
                [_("CSAT satisfied (%)"), summary["csat_percent"]],
                [_("Mean score"), summary["mean"]],
                [_("Invitations sent"), rate["sent"]],
                [_("Answered"), rate["answered"]],
                [_("Response rate (%)"), rate["rate"]],
            ],
        ),
        (
            _("By month"),
            [_("Month"), _("Answers"), "NPS", _("Mean score")],
            [[m["month"], m["n"], m["nps"], m["mean"]] for m in context["months"]],
        ),
        *(
            (
                str(title),
                [
                    pgettext("survey breakdown", "Group"),
                    _("Answers"),
                    "NPS",
                    _("Satisfied (%)"),
                    _("Mean score"),
                ],
                [[r["label"], r["n"], r["nps"], r["satisfied_percent"], r["mean"]] for r in rows],
            )
            for title, rows in context["breakdowns"]
        ),
        (
            _("Top complaint topics"),
            [_("Topic"), _("Poor answers"), _("Example comment")],
            [
                [t["topic"], t["n"], t["examples"][0] if t["examples"] else ""]
                for t in context["topics"]
            ],
        ),
        (
            _("Closed loop"),
            [_("Figure"), _("Value")],
            [
                [_("Follow-ups open"), loop["open"]],
                [_("Follow-ups resolved"), loop["resolved"]],
                [_("Resolved late"), loop["resolved_late"]],
                [_("Answered again"), loop["answered_again"]],
                [_("Recovered"), loop["recovered"]],
                [_("Still poor"), loop["still_poor"]],
            ],
        ),
    ]
