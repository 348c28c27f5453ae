"""Every change to surveys and answers goes through here: the back office, API, page and jobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.analytics.feedback_text import (
    detect_language,
    extract_keywords,
    find_topics,
    score_sentiment,
)
from kequn.commerce.models import Order
from kequn.customers.models import Consent, Customer, Identity
from kequn.engage.channels import OutgoingMessage, get_channel
from kequn.feedback.models import FollowUp, Invitation, OptOut, Response, Survey
from kequn.journeys.services import fire_trigger
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit
from kequn.service.models import Priority, Source, TicketType
from kequn.service.services import open_ticket

# The main question's scale of each kind of survey.
SCALES: dict[str, tuple[int, int]] = {
    Survey.Kind.NPS: (0, 10),
    Survey.Kind.CSAT: (1, 5),
    Survey.Kind.CES: (1, 7),
}
QUESTION_TYPES = ("scale", "choice", "text")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
MAX_TEXT = 2000
SALT = "kequn.feedback.invitation"


class SurveyError(ValueError):
    """Bad survey input; the message is one line naming the place and the fix."""


class InvitationError(ValueError):
    """A link that is unknown, forged, expired or already used; the message says which."""


def validate_questions(questions: Any) -> list[dict[str, Any]]:
    """Return the further questions checked, or raise SurveyError naming the question."""
    if not isinstance(questions, list):
        raise SurveyError(_("questions must be a list of objects"))
    seen: set[str] = set()
    for number, question in enumerate(questions, start=1):
        where = _("question %(n)d") % {"n": number}
        if not isinstance(question, dict):
            raise SurveyError(_("%(where)s: must be an object") % {"where": where})
        key, kind = question.get("key"), question.get("type")
        if not isinstance(key, str) or not KEY.match(key) or key in seen | {"score"}:
            raise SurveyError(
                _("%(where)s: key %(key)r must be new, lower case letters, digits or _")
                % {"where": where, "key": key}
            )
        seen.add(key)
        if kind not in QUESTION_TYPES:
            raise SurveyError(
                _("%(where)s: type %(type)r is not one of %(types)s")
                % {"where": where, "type": kind, "types": ", ".join(QUESTION_TYPES)}
            )
        text = question.get("text")
        if not isinstance(text, dict) or not any(text.get(k) for k in ("zh-hans", "en")):
            raise SurveyError(
                _('%(where)s: give the text as {"zh-hans": ..., "en": ...}') % {"where": where}
            )
        if kind == "scale":
            low, high = question.get("min", 1), question.get("max", 5)
            if not (isinstance(low, int) and isinstance(high, int) and low < high <= 100):
                raise SurveyError(
                    _("%(where)s: min and max must be whole numbers with min < max ≤ 100")
                    % {"where": where}
                )
        if kind == "choice":
            options = question.get("options")
            if (
                not isinstance(options, list)
                or not options
                or not all(isinstance(o, str) and o for o in options)
            ):
                raise SurveyError(
                    _("%(where)s: options must be a non-empty list of texts") % {"where": where}
                )
    return questions


def create_survey(
    *,
    name: str,
    kind: str = Survey.Kind.NPS,
    questions: Any = (),
    trigger: str = Survey.Trigger.MANUAL,
    delay_days: int = 7,
    valid_days: int = 30,
    by: Actor,
) -> Survey:
    """Create a survey after checking its questions."""
    if kind not in Survey.Kind.values:
        raise SurveyError(_("kind %(kind)r is not one of nps, csat, ces, custom") % {"kind": kind})
    if trigger not in Survey.Trigger.values:
        raise SurveyError(_("unknown trigger %(t)r") % {"t": trigger})
    if not (0 <= delay_days <= 365 and 1 <= valid_days <= 365):
        raise SurveyError(_("delay_days must be 0–365 and valid_days 1–365"))
    checked = validate_questions(list(questions))
    if kind == Survey.Kind.CUSTOM and not checked:
        raise SurveyError(_("a custom survey needs at least one question"))
    with transaction.atomic(), audit.acting_as(by):
        survey = Survey.objects.create(
            name=name.strip()[:200] or _("Survey"),
            kind=kind,
            questions=checked,
            trigger=trigger,
            delay_days=delay_days,
            valid_days=valid_days,
        )
        audit.record_event(audit.CREATE, actor=by, target=survey)
    return survey


def _sign(invitation_id: int, nonce: str) -> str:
    message = f"{SALT}:{invitation_id}:{nonce}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def build_token(invitation: Invitation) -> str:
    """Return the token of the invitation's answer link."""
    return f"{invitation.pk}.{_sign(invitation.pk, invitation.nonce)}"


def find_invitation(token: str) -> Invitation:
    """Return the invitation a link's token names, or raise InvitationError (unknown or forged)."""
    pk_text, _dot, signature = token.partition(".")
    invitation = None
    # At most 18 digits: a longer number is no invitation id (no query for it).
    if pk_text.isdigit() and len(pk_text) <= 18 and signature:
        # get(), not first(): no ORDER BY on the answer page's every request.
        try:
            invitation = Invitation.objects.select_related("survey", "customer").get(
                pk=int(pk_text)
            )
        except Invitation.DoesNotExist:
            invitation = None
    if invitation is None or not hmac.compare_digest(
        signature, _sign(invitation.pk, invitation.nonce)
    ):
        raise InvitationError(_("This survey link is not valid."))
    return invitation


@dataclass
class InviteResult:
    """What inviting a set of customers did: the invitations made and the skips by reason."""

    created: list[Invitation] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def invite_customers(
    *, survey: Survey, customer_ids: Iterable[int], about: str = "", by: Actor
) -> InviteResult:
    """Make one invitation per customer (again for the same `about` makes none); count skips."""
    result = InviteResult()
    if not survey.is_active:
        raise SurveyError(
            _("survey %(name)r is not active: activate it first") % {"name": survey.name}
        )
    ids = list(dict.fromkeys(customer_ids))
    customers = Customer.objects.in_bulk(ids)
    opted_out = set(
        OptOut.objects.filter(customer_id__in=ids).values_list("customer_id", flat=True)
    )
    already = set(
        Invitation.objects.filter(survey=survey, about=about[:64], customer_id__in=ids).values_list(
            "customer_id", flat=True
        )
    )
    expires = timezone.now() + timedelta(days=survey.valid_days)
    new = []
    for customer_id in ids:
        customer = customers.get(customer_id)
        if customer is None or customer.merged_into_id:
            result.skipped["unknown_customer"] += 1
        elif customer.processing_restricted:
            result.skipped["restricted"] += 1
        elif customer_id in opted_out:
            result.skipped["opted_out"] += 1
        elif customer_id in already:
            result.skipped["already_invited"] += 1
        else:
            new.append(
                Invitation(
                    survey=survey,
                    customer_id=customer_id,
                    about=about[:64],
                    nonce=secrets.token_hex(16),
                    expires_at=expires,
                )
            )
    with transaction.atomic():
        # ignore_conflicts: a concurrent run inviting the same people makes no second row.
        Invitation.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        result.created = list(
            Invitation.objects.filter(
                survey=survey, about=about[:64], customer_id__in=[i.customer_id for i in new]
            )
        )
        if result.created:
            audit.record_event(
                audit.CREATE,
                actor=by,
                target=survey,
                detail={
                    "relation": "invitations",
                    "added": len(result.created),
                    "about": about[:64],
                },
            )
    return result


def build_answer_url(invitation: Invitation) -> str:
    """Return the absolute link of the invitation's answer page."""
    return f"{settings.KEQUN_PUBLIC_URL.rstrip('/')}/s/{build_token(invitation)}/"


def _email_of(customer_ids: list[int]) -> dict[int, str]:
    addresses: dict[int, str] = {}
    for identity in Identity.objects.filter(customer_id__in=customer_ids, kind="email").order_by(
        "-verified", "id"
    ):
        addresses.setdefault(identity.customer_id, identity.value)
    return addresses


def _service_email_refused(customer_ids: list[int]) -> set[int]:
    latest: dict[int, bool] = {}
    for customer_id, granted in (
        Consent.objects.filter(customer_id__in=customer_ids, channel="email", purpose="service")
        .order_by("recorded_at", "id")
        .values_list("customer_id", "granted")
    ):
        latest[customer_id] = granted
    return {c for c, granted in latest.items() if not granted}


SendBatch = Callable[[list[Any]], list[Any]]


def send_invitations(
    *, invitations: list[Invitation], by: Actor, send_batch: SendBatch | None = None
) -> Counter[str]:
    """E-mail the invitations not sent yet; return the counts by outcome (sent, skip reasons).

    Safe to run again: a sent invitation is marked at once and never sent twice.
    """
    outcome: Counter[str] = Counter()
    pending = [i for i in invitations if i.sent_at is None and i.answered_at is None]
    ids = [i.customer_id for i in pending]
    addresses = _email_of(ids)
    refused = _service_email_refused(ids)
    messages, by_key = [], {}
    for invitation in pending:
        if invitation.customer_id in refused:
            outcome["no_consent"] += 1
            continue
        address = addresses.get(invitation.customer_id)
        if not address:
            outcome["no_address"] += 1
            continue
        url = build_answer_url(invitation)
        subject = _("%(name)s: a minute for your opinion?") % {"name": invitation.survey.name}
        text = _("Please tell us how we did: %(url)s") % {"url": url}
        key = f"survey-invitation-{invitation.pk}"
        messages.append(
            OutgoingMessage(key=key, to=address, subject=subject, text=text,
                            html=f'<p>{text.replace(url, "")}<a href="{url}">{url}</a></p>')
        )  # fmt: skip
        by_key[key] = invitation
    if messages:
        if send_batch is None:
            channel = get_channel("email")
            try:
                results = channel.send_batch(messages)
            finally:
                channel.close()
        else:
            results = send_batch(messages)
        now = timezone.now()
        sent = [by_key[r.key].pk for r in results if r.status == "sent"]
        Invitation.objects.filter(pk__in=sent).update(sent_at=now, channel="email")
        outcome["sent"] += len(sent)
        outcome.update(r.status for r in results if r.status != "sent")
        if sent:
            audit.record_event(
                audit.CHANGE,
                actor=by,
                target_type="feedback.invitation",
                detail={"sent": len(sent)},
            )
    return outcome


def classify_score(kind: str, score: int | None) -> str:
    """Return the answer's category: NPS promoter/passive/detractor, CSAT/CES happy/unhappy."""
    if score is None:
        return ""
    if kind == Survey.Kind.NPS:
        return "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
    if kind == Survey.Kind.CSAT:
        return "unhappy" if score <= 2 else "neutral" if score == 3 else "happy"
    if kind == Survey.Kind.CES:  # 1 = very easy ... 7 = very hard
        return "happy" if score <= 3 else "neutral" if score == 4 else "unhappy"
    return ""


def needs_follow_up(category: str) -> bool:
    """Return whether an answer of this category opens the closed loop."""
    return category in ("detractor", "unhappy")


def _clean_answers(survey: Survey, answers: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    cleaned: dict[str, Any] = {}
    score = None
    if survey.kind in SCALES:
        low, high = SCALES[survey.kind]
        raw = answers.get("score")
        try:
            score = int(str(raw).strip())
        except (TypeError, ValueError):
            raise SurveyError(
                _("score: choose a number from %(low)d to %(high)d") % {"low": low, "high": high}
            ) from None
        if not low <= score <= high:
            raise SurveyError(
                _("score: choose a number from %(low)d to %(high)d") % {"low": low, "high": high}
            )
    for question in survey.questions:
        key, value = question["key"], answers.get(question["key"])
        if value in (None, ""):
            continue
        if question["type"] == "scale":
            try:
                number = int(str(value))
            except ValueError:
                number = None
            if number is None or not question.get("min", 1) <= number <= question.get("max", 5):
                raise SurveyError(_("%(key)s: choose a number on the scale") % {"key": key})
            cleaned[key] = number
        elif question["type"] == "choice":
            if value not in question["options"]:
                raise SurveyError(_("%(key)s: choose one of the options") % {"key": key})
            cleaned[key] = value
        else:
            cleaned[key] = str(value).replace("\x00", "")[:MAX_TEXT].strip()
    comment = str(answers.get("comment") or "").replace("\x00", "")[:MAX_TEXT].strip()
    if comment:
        cleaned["comment"] = comment
    return score, cleaned


# The journey trigger an answer fires (journeys may start on a survey answer, e.g. a
# win-back after a detractor); registered by the app's ready().
ANSWERED = "feedback.survey_answered"


def record_response(*, token: str, answers: dict[str, Any], by: Actor) -> Response:
    """Store the answer to an invitation (once), analyse its text, open the loop if poor."""
    invitation = find_invitation(token)
    if invitation.answered_at is not None:
        raise InvitationError(_("This survey has already been answered. Thank you!"))
    if invitation.expires_at < timezone.now():
        raise InvitationError(_("This survey link has expired."))
    survey = invitation.survey
    score, cleaned = _clean_answers(survey, answers)
    texts = [v for k, v in cleaned.items() if isinstance(v, str) and (k == "comment" or any(
        q["key"] == k and q["type"] == "text" for q in survey.questions))]  # fmt: skip
    comment = "\n".join(texts)
    category = classify_score(survey.kind, score)
    now = timezone.now()
    try:
        with transaction.atomic(), audit.acting_as(by):
            claimed = Invitation.objects.filter(pk=invitation.pk, answered_at=None).update(
                answered_at=now
            )
            if not claimed:  # another request answered it first
                raise IntegrityError("answered")
            response = Response.objects.create(
                invitation=invitation,
                survey=survey,
                customer_id=invitation.customer_id,
                score=score,
                category=category,
                answers=cleaned,
                comment=comment,
                language=detect_language(comment) if comment else "",
                sentiment=score_sentiment(comment) if comment else None,
                keywords=extract_keywords([comment])[0] if comment else [],
                answered_at=now,
            )
            if needs_follow_up(category):
                _open_follow_up(response, by=by)
    except IntegrityError:
        raise InvitationError(_("This survey has already been answered. Thank you!")) from None
    payload = {"survey_id": survey.pk, "kind": survey.kind, "category": category,
               "score": score, "key": f"response-{response.pk}"}  # fmt: skip
    transaction.on_commit(
        lambda: fire_trigger(
            kind=ANSWERED, customer_ids=[response.customer_id], payload=payload, by=by
        )
    )
    return response


def _open_follow_up(response: Response, *, by: Actor) -> FollowUp:
    """Open the follow-up and its service ticket (a complaint, high priority, from the survey)."""
    due = response.answered_at + timedelta(hours=settings.KEQUN_FEEDBACK_FOLLOW_UP_HOURS)
    survey = response.survey
    body = _("Score %(score)s (%(category)s) on %(survey)s.") % {
        "score": response.score if response.score is not None else "-",
        "category": response.get_category_display(),
        "survey": survey.name,
    }
    ticket = open_ticket(
        customer_id=response.customer_id,
        subject=_("Follow up a poor survey answer: %(survey)s") % {"survey": survey.name},
        body=f"{body}\n\n{response.comment}".strip(),
        type=TicketType.COMPLAINT,
        priority=Priority.HIGH,
        source=Source.SURVEY,
        by=by,
    )
    return FollowUp.objects.create(response=response, due_at=due, ticket_id=ticket.pk)


def resolve_follow_up(*, follow_up: FollowUp, note: str = "", by: Actor) -> FollowUp:
    """Close the loop on a poor answer (idempotent)."""
    if follow_up.status == FollowUp.Status.RESOLVED:
        return follow_up
    with transaction.atomic(), audit.acting_as(by):
        follow_up.status = FollowUp.Status.RESOLVED
        follow_up.resolved_at = timezone.now()
        follow_up.note = note[:MAX_TEXT]
        user = get_user_or_none(by)
        if follow_up.owner_id is None and user is not None:
            follow_up.owner_id = user.pk
        follow_up.save()
    return follow_up


def opt_out(*, customer: Customer, source: str, by: Actor) -> OptOut:
    """Record that the customer wants no more surveys (idempotent)."""
    with transaction.atomic(), audit.acting_as(by):
        record, _created = OptOut.objects.get_or_create(
            customer=customer, defaults={"source": source[:100]}
        )
    return record


def analyse_topics(*, since_days: int = 365, n_topics: int = 6, by: Actor) -> list[list[str]]:
    """Group the recent comments into topics, label each response with its topic's words."""
    since = timezone.now() - timedelta(days=since_days)
    rows = list(
        Response.objects.filter(answered_at__gte=since)
        .exclude(comment="")
        .values_list("pk", "comment")
    )
    topics = find_topics([c for _pk, c in rows], n_topics=n_topics)
    labels: dict[str, list[int]] = {}
    for (pk, _comment), topic in zip(rows, topics.assignment, strict=True):
        label = " / ".join(topics.words[topic][:3]) if topic >= 0 else ""
        labels.setdefault(label[:50], []).append(pk)
    with transaction.atomic():
        for label, pks in labels.items():
            Response.objects.filter(pk__in=pks).update(topic=label)
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target_type="feedback.response",
            detail={"topics": len(topics.words), "responses": len(rows)},
        )
    return topics.words


def invite_and_send(
    *, survey: Survey, customer_ids: Iterable[int], about: str = "", by: Actor
) -> Counter[str]:
    """Invite customers and e-mail the invitations; return the counts (invited, sent, skips)."""
    result = invite_customers(survey=survey, customer_ids=customer_ids, about=about, by=by)
    counts = Counter(result.skipped)
    counts["invited"] = len(result.created)
    if result.created:
        counts.update(send_invitations(invitations=result.created, by=by))
    return counts


def handle_ticket_closed(*, ticket: Any, by: Actor) -> None:
    """Close the loop of a follow-up ticket; ask the customer about a closed ticket."""
    for follow_up in FollowUp.objects.filter(ticket_id=ticket.pk, status=FollowUp.Status.OPEN):
        resolve_follow_up(follow_up=follow_up, note=_("Ticket closed"), by=by)
    if ticket.customer_id is None:
        return
    for survey in Survey.objects.filter(trigger=Survey.Trigger.TICKET_CLOSED, is_active=True):
        invite_and_send(
            survey=survey, customer_ids=[ticket.customer_id], about=f"ticket:{ticket.pk}", by=by
        )


def invite_after_orders(*, by: Actor, now: Any = None) -> Counter[str]:
    """Invite the customers of orders placed `delay_days` ago (once per order); count outcomes."""
    now = now or timezone.now()
    counts: Counter[str] = Counter()
    for survey in Survey.objects.filter(trigger=Survey.Trigger.ORDER_DELIVERED, is_active=True):
        due_before = now - timedelta(days=survey.delay_days)
        # A two-day window: orders missed while the worker was down are still asked once.
        orders = Order.objects.filter(
            ordered_at__lte=due_before,
            ordered_at__gt=due_before - timedelta(days=2),
            customer__isnull=False,
            status__in=Order.PURCHASE_STATUSES,
        ).values_list("pk", "customer_id")
        for order_id, customer_id in orders.iterator():
            counts.update(
                invite_and_send(
                    survey=survey, customer_ids=[customer_id], about=f"order:{order_id}", by=by
                )
            )
    return counts
