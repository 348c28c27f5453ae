"""The closed loop: a poor answer opens a complaint ticket; closing it resolves the follow-up."""

from __future__ import annotations

import pytest

from kequn.feedback.models import FollowUp, Response, Survey
from kequn.feedback.selectors import get_loop_outcome, summarize_scores
from kequn.feedback.services import (
    build_token,
    create_survey,
    invite_customers,
    record_response,
)
from kequn.service.models import Ticket
from kequn.service.services import change_status, open_ticket
from tests.feedback.conftest import BY, make_customer

pytestmark = pytest.mark.django_db


def answer(survey: Survey, customer, score: int, comment: str = "", about: str = "") -> Response:
    invitation = invite_customers(survey=survey, customer_ids=[customer.pk], about=about, by=BY)
    token = build_token(invitation.created[0])
    return record_response(token=token, answers={"score": score, "comment": comment}, by=BY)


def test_detractor_opens_a_complaint_and_its_closing_resolves_the_loop(
    settings, django_capture_on_commit_callbacks
):
    settings.KEQUN_FEEDBACK_FOLLOW_UP_HOURS = 24
    survey = create_survey(name="NPS", by=BY)
    customer = make_customer("angry@example.com")
    response = answer(survey, customer, 3, "客服态度差，没人理", about="first")
    follow_up = FollowUp.objects.get(response=response)
    assert (follow_up.due_at - response.answered_at).total_seconds() == 24 * 3600
    ticket = Ticket.objects.get(pk=follow_up.ticket_id)
    assert (ticket.type, ticket.priority, ticket.source) == ("complaint", "high", "survey")
    assert ticket.customer_id == customer.pk
    with django_capture_on_commit_callbacks(execute=True):
        change_status(ticket=ticket, status="closed", by=BY)
    follow_up.refresh_from_db()
    assert follow_up.status == "resolved" and follow_up.resolved_at is not None
    # The customer's next answer tells whether the loop worked.
    answer(survey, customer, 9, "后来处理得很好", about="second")
    outcome = get_loop_outcome(survey)
    assert outcome["resolved"] == 1 and outcome["recovered"] == 1 and outcome["still_poor"] == 0


def test_csat_one_or_two_opens_a_follow_up_and_nps_is_computed():
    csat = create_survey(name="CSAT", kind="csat", by=BY)
    nps = create_survey(name="NPS", by=BY)
    people = [make_customer(f"p{i}@example.com", name=f"客户{i}") for i in range(6)]
    answer(csat, people[0], 2)
    answer(csat, people[1], 3)
    assert FollowUp.objects.count() == 1
    for person, score in zip(people, [10, 9, 8, 6, 0, 10], strict=True):
        answer(nps, person, score)
    summary = summarize_scores(Response.objects.filter(survey=nps))
    # 3 promoters, 1 passive, 2 detractors of 6: NPS = (3 - 2) / 6 = 16.7
    assert (summary["promoters"], summary["passives"], summary["detractors"]) == (3, 1, 2)
    assert summary["nps"] == 16.7
    assert FollowUp.objects.count() == 3


def test_a_closed_ticket_sends_the_after_ticket_survey(smtp, django_capture_on_commit_callbacks):
    survey = create_survey(name="售后回访", kind="csat", trigger="ticket_closed", by=BY)
    customer = make_customer("ticket@example.com")
    ticket = open_ticket(customer_id=customer.pk, subject="屏幕坏了", body="换货", by=BY)
    with django_capture_on_commit_callbacks(execute=True):
        change_status(ticket=ticket, status="closed", by=BY)
    assert smtp.recipients() == ["ticket@example.com"]
    assert survey.invitations.get().about == f"ticket:{ticket.pk}"


def test_segment_rules_on_last_nps_poor_answers_and_open_follow_ups():
    from kequn.segments.services import count_rule

    nps = create_survey(name="NPS", by=BY)
    fan, critic, silent = (make_customer(f"s{i}@example.com", name=f"S{i}") for i in range(3))
    answer(nps, critic, 9, about="old")
    answer(nps, critic, 2, about="new")  # the latest answer counts
    answer(nps, fan, 10)

    def count(condition):
        return count_rule({"match": "all", "conditions": [condition]})

    assert count({"field": "last_nps", "operator": "lte", "value": 6}) == 1
    assert count({"field": "last_nps", "operator": "gte", "value": 9}) == 1
    assert count({"field": "poor_survey_answers", "operator": "gte", "value": 1, "days": 30}) == 1
    assert count({"field": "open_survey_follow_up", "operator": "is", "value": True}) == 1
    assert silent.pk not in {fan.pk, critic.pk}
