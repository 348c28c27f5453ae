"""Demo feedback: an NPS survey after orders and a CSAT survey after tickets, with answers.

Answers go through the real services (so detractors open follow-up tickets and the text is
analysed), then are dated back over the last six months so the report's months are filled.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.utils import timezone

from kequn.customers.models import Customer
from kequn.feedback.models import Invitation, Response, Survey
from kequn.feedback.services import (
    analyse_topics,
    build_token,
    create_survey,
    invite_customers,
    record_response,
)
from kequn.security.actors import Actor

COMMENTS = {
    "promoter": ["物流很快，包装也很好，推荐！", "客服很耐心，非常满意", "手机好用，性价比高",
                 "Fast delivery and friendly staff", "门店服务热情专业"],
    "passive": ["还可以，价格有点贵", "一般吧，发货速度正常", "OK overall, app could be easier"],
    "detractor": ["快递太慢了，一周才到", "屏幕有坏点，退货很麻烦", "客服态度差，没人理",
                  "退款一直没到账，很失望", "Delivery was late and the box was damaged",
                  "电池不耐用，质量太差", "快递延迟，包装破损"],
}  # fmt: skip
QUESTIONS: list[dict[str, Any]] = [
    {"key": "reason", "type": "choice", "text": {"zh-hans": "影响您评分的主要原因", "en": "Main reason"},
     "options": ["物流", "商品质量", "价格", "客服"]},
]  # fmt: skip


def create_demo_feedback(*, by: Actor, answers: int = 300, seed: int = 7) -> str:
    """Create the demo surveys and answers once; return a line saying what was made."""
    if Survey.objects.exists():
        return "Demo surveys are already there; keeping them."
    rng = random.Random(seed)
    nps = create_survey(
        name="购物体验 NPS", kind="nps", questions=QUESTIONS, trigger="order_delivered", by=by
    )
    csat = create_survey(name="售后回访满意度", kind="csat", trigger="ticket_closed", by=by)
    ids = list(
        Customer.objects.filter(merged_into__isnull=True, processing_restricted=False)
        .order_by("?")
        .values_list("pk", flat=True)[: answers * 2]
    )
    now = timezone.now()
    made = 0
    for survey in (nps, csat):
        share = ids[: len(ids) // 2] if survey is nps else ids[len(ids) // 2 :]
        invited = invite_customers(survey=survey, customer_ids=share, about="demo", by=by).created
        # Invitations went out over six months; about 40 % answered.
        for invitation in invited:
            sent = now - timedelta(days=rng.uniform(1, 180))
            Invitation.objects.filter(pk=invitation.pk).update(sent_at=sent, channel="email")
            if rng.random() > 0.4:
                continue
            if survey is nps:
                score = rng.choices(range(11), weights=[2, 1, 1, 2, 2, 3, 4, 8, 12, 14, 12])[0]
                kind = "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
                reply: dict[str, Any] = {
                    "score": score,
                    "reason": rng.choice(QUESTIONS[0]["options"]),
                }
            else:
                score = rng.choices(range(1, 6), weights=[1, 1, 2, 5, 6])[0]
                kind = "detractor" if score <= 2 else "passive" if score == 3 else "promoter"
                reply = {"score": score}
            if rng.random() < 0.7:
                reply["comment"] = rng.choice(COMMENTS[kind])
            response = record_response(token=build_token(invitation), answers=reply, by=by)
            answered = sent + timedelta(hours=rng.uniform(1, 72))
            Response.objects.filter(pk=response.pk).update(answered_at=answered)
            Invitation.objects.filter(pk=invitation.pk).update(answered_at=answered)
            made += 1
    topics = analyse_topics(by=by)
    return f"Created 2 demo surveys with {made} answers in {len(topics)} topics."
