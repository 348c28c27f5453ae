"""Surveys: invitations by e-mail, the public answer page, one answer per link, opt-out."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone, translation

from kequn.customers.services import record_consent
from kequn.feedback.models import FollowUp, Invitation, OptOut, Response, Survey
from kequn.feedback.services import (
    SurveyError,
    build_token,
    create_survey,
    invite_and_send,
    invite_customers,
)
from tests.feedback.conftest import BY, make_customer

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"key": "reason", "type": "choice", "text": {"zh-hans": "主要原因", "en": "Main reason"},
     "options": ["price", "service"]},
    {"key": "ease", "type": "scale", "min": 1, "max": 5, "text": {"en": "Ease"}},
]  # fmt: skip


def link_of(sink) -> str:
    body = sink.messages[-1].message.get_body(("plain",)).get_content()
    return re.search(r"https://crm\.shop\.example(/s/[^\s]+/)", body).group(1)


def test_invitation_mail_links_to_a_page_that_takes_one_answer(client, smtp):
    survey = create_survey(name="服务满意度", kind="nps", questions=QUESTIONS, by=BY)
    customer = make_customer("fang@example.com")
    counts = invite_and_send(survey=survey, customer_ids=[customer.pk], about="order:1", by=BY)
    assert counts["sent"] == 1 and counts["invited"] == 1
    assert smtp.recipients() == ["fang@example.com"]
    path = link_of(smtp)
    page = client.get(path)
    assert page.status_code == 200 and "服务满意度" in page.content.decode()
    assert 'name="score" value="10"' in page.content.decode()
    assert page["Referrer-Policy"] == "no-referrer"
    answer = {"score": "4", "reason": "price", "ease": "2", "comment": "快递太慢了，包装破损"}
    assert client.post(path, answer).status_code == 200
    response = Response.objects.get()
    assert (response.score, response.category) == (4, "detractor")
    assert response.answers["reason"] == "price" and response.sentiment < 0
    assert response.language == "zh" and "破损" in response.keywords
    # Single use: the same link again is refused, and nothing changes.
    again = client.post(path, {"score": "10"})
    assert again.status_code == 410 and Response.objects.count() == 1
    # The same invitation is not made or sent twice.
    second = invite_and_send(survey=survey, customer_ids=[customer.pk], about="order:1", by=BY)
    assert second["already_invited"] == 1 and len(smtp.messages) == 1


def test_forged_expired_and_bad_answers(client, smtp):
    survey = create_survey(name="CSAT", kind="csat", by=BY)
    customer = make_customer("li@example.com", language="en")
    invitation = invite_customers(survey=survey, customer_ids=[customer.pk], by=BY).created[0]
    token = build_token(invitation)
    assert client.get(f"/s/{invitation.pk}.forged/").status_code == 404
    assert client.get(f"/s/{token[:-2]}xx/").status_code == 404
    page = client.post(f"/s/{token}/", {"score": "9"})  # CSAT is 1–5
    assert page.status_code == 400 and "from 1 to 5" in page.content.decode()
    assert not Response.objects.exists()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    assert client.post(f"/s/{token}/", {"score": "5"}).status_code == 410
    # A new nonce revokes the old link.
    Invitation.objects.filter(pk=invitation.pk).update(nonce="0" * 32)
    assert client.get(f"/s/{token}/").status_code == 404


def test_opt_out_and_withdrawn_consent_are_honoured(client, smtp):
    survey = create_survey(name="NPS", by=BY)
    quiet = make_customer("quiet@example.com")
    no_mail = make_customer("nomail@example.com")
    record_consent(no_mail, "email", "service", False, by=BY)
    first = invite_and_send(survey=survey, customer_ids=[quiet.pk, no_mail.pk], by=BY)
    assert first["sent"] == 1 and first["no_consent"] == 1
    path = link_of(smtp)
    assert client.post(path + "opt-out/").status_code == 200
    assert OptOut.objects.filter(customer=quiet).exists()
    later = invite_and_send(survey=survey, customer_ids=[quiet.pk], about="again", by=BY)
    assert later["opted_out"] == 1 and len(smtp.messages) == 1


@translation.override("en")
def test_questions_are_checked_with_the_place_named():
    with pytest.raises(SurveyError, match="question 2: type 'stars'"):
        create_survey(
            name="x",
            questions=[QUESTIONS[0], {"key": "k", "type": "stars", "text": {"en": "?"}}],
            by=BY,
        )
    with pytest.raises(SurveyError, match="question 1: key 'score'"):
        create_survey(name="x", questions=[{**QUESTIONS[0], "key": "score"}], by=BY)
    with pytest.raises(SurveyError, match="custom survey needs"):
        create_survey(name="x", kind="custom", by=BY)
    assert not Survey.objects.exists()


def test_a_promoter_opens_no_follow_up(client, smtp):
    survey = create_survey(name="NPS", by=BY)
    customer = make_customer("happy@example.com", language="en")
    invite_and_send(survey=survey, customer_ids=[customer.pk], by=BY)
    page = client.get(link_of(smtp)).content.decode()
    assert "How likely are you to recommend us" in page  # the customer's language
    client.post(link_of(smtp), {"score": "10", "comment": "Very helpful and fast"})
    response = Response.objects.get()
    assert response.category == "promoter" and response.sentiment > 0
    assert not FollowUp.objects.exists()


def test_a_link_with_an_overlong_number_is_not_valid(client):
    response = client.get("/s/99999999999999999999999.abc/")
    assert response.status_code == 404
