"""Campaigns: create, check, evaluate the audience at send time, A/B winners, the worker's pump."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.db.writes import insert_columns
from kequn.engage import content
from kequn.engage.channels import ChannelNotConfiguredError, get_channel
from kequn.engage.models import Campaign, Message, Purpose, Recipient, Run, Template, Variant
from kequn.engage.policy import is_in_control_group, is_in_holdout
from kequn.engage.services.audience import check_eligibility
from kequn.engage.services.outbox import PENDING, ensure_wakeup, get_next_due, send_due_messages
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit.services import CHANGE, CREATE, record_event
from kequn.security.keyring.services import encrypt_many
from kequn.segments.models import Segment, SegmentMember
from kequn.segments.services import compile_member_sql, plan_without_jit

CHUNK = 2000


class CampaignError(ValidationError):
    """A campaign that cannot be sent as it is; the message says what to change."""


def _one_line(campaign: Campaign, text: str) -> CampaignError:
    return CampaignError(
        _("campaign #%(id)s %(name)s: %(problem)s")
        % {"id": campaign.pk, "name": campaign.name, "problem": text}
    )


def check_template_sources(template: Template) -> list[str]:
    """Return one line per problem of a template's subject and bodies (empty when fine)."""
    problems: list[str] = []
    for label, source in (
        ("subject_zh", template.subject_zh),
        ("body_zh", template.body_zh),
        ("subject_en", template.subject_en),
        ("body_en", template.body_en),
    ):
        if source:
            problems.extend(
                f"{template.name} {label}: {error}" for error in content.check_template(source)
            )
    if not (template.body_zh or template.body_en):
        problems.append(_("%(name)s: the template has no body") % {"name": template.name})
    return problems


@transaction.atomic
def create_template(
    *,
    name: str,
    channel: str,
    body_zh: str = "",
    body_en: str = "",
    subject_zh: str = "",
    subject_en: str = "",
    purpose: str = Purpose.MARKETING,
    template_code: str = "",
    by: Actor,
) -> Template:
    """Create a message template after checking its merge fields."""
    template = Template(
        name=name,
        channel=channel,
        purpose=purpose,
        subject_zh=subject_zh,
        body_zh=body_zh,
        subject_en=subject_en,
        body_en=body_en,
        template_code=template_code,
    )
    template.full_clean()
    problems = check_template_sources(template)
    if problems:
        raise ValidationError(problems)
    template.save()
    record_event(CREATE, actor=by, target=template, detail={"channel": channel})
    return template


@transaction.atomic
def create_campaign(
    *,
    name: str,
    segment: Segment,
    template: Template,
    channel: str | None = None,
    holdout_percent: int = 10,
    conversion_days: int = 7,
    schedule: str = Campaign.Schedule.NOW,
    next_run_at: datetime | None = None,
    variants: list[Template] | None = None,
    ab_test_percent: int = 0,
    ab_window_hours: int = 24,
    by: Actor,
) -> Campaign:
    """Create a campaign (a draft, or scheduled when it has a time or a rhythm)."""
    if not 0 <= holdout_percent <= 50:
        raise ValidationError(
            _("holdout percent must be between 0 and 50, got %(p)s") % {"p": holdout_percent}
        )
    channel = channel or template.channel
    if template.channel != channel:
        raise ValidationError(
            _("template %(t)s is for %(tc)s, not %(c)s: pick a template of the channel")
            % {"t": template.name, "tc": template.channel, "c": channel}
        )
    campaign = Campaign(
        name=name,
        segment=segment,
        segment_name=segment.name,
        channel=channel,
        template=template,
        holdout_percent=holdout_percent,
        conversion_days=conversion_days,
        schedule=schedule,
        next_run_at=next_run_at,
        ab_test_percent=ab_test_percent if variants else 0,
        ab_window_hours=ab_window_hours,
        created_by=cast(Any, get_user_or_none(by)),  # the configured user model
    )
    if schedule != Campaign.Schedule.NOW:
        if next_run_at is None:
            raise ValidationError(_("a scheduled or recurring campaign needs its first run time"))
        campaign.status = Campaign.Status.SCHEDULED
    campaign.full_clean(exclude=["segment_name"])
    campaign.save()
    for label, variant_template in zip("ABCDEFGH", variants or [], strict=False):
        Variant.objects.create(campaign=campaign, label=label, template=variant_template)
    record_event(
        CREATE,
        actor=by,
        target=campaign,
        detail={"segment": segment.pk, "channel": channel, "holdout_percent": holdout_percent},
    )
    if campaign.status == Campaign.Status.SCHEDULED:
        transaction.on_commit(lambda: ensure_wakeup(next_run_at))
    return campaign


def check_campaign(campaign: Campaign, *, check_channel: bool = True) -> None:
    """Raise a one-line CampaignError when the campaign cannot be sent (before anything is)."""
    segment = campaign.segment
    if segment is None:
        raise _one_line(
            campaign,
            _("its segment %(name)r was deleted: choose another segment")
            % {"name": campaign.segment_name},
        )
    if segment.disabled_at is not None:
        raise _one_line(
            campaign,
            _("its segment %(name)r is disabled (its rule names something deleted): fix the rule")
            % {"name": segment.name},
        )
    templates = [campaign.template, *(v.template for v in campaign.variants.all())]
    problems = [p for t in templates for p in check_template_sources(t)]
    if problems:
        raise _one_line(campaign, "; ".join(problems))
    if not check_channel:
        return
    try:
        get_channel(campaign.channel).close()
    except (ChannelNotConfiguredError, ValueError) as exc:
        raise _one_line(campaign, str(exc)) from None


def select_segment_members(segment: Segment) -> list[int]:
    """Return the segment's customers now: a dynamic rule evaluated, a static list read."""
    if segment.is_dynamic:
        sql, params = compile_member_sql(segment.rules)
        with transaction.atomic(), connection.cursor() as cursor:
            plan_without_jit()
            cursor.execute(f"SELECT q.id FROM ({sql}) q", params)  # noqa: S608 -- generated, values bound
            return sorted(row[0] for row in cursor.fetchall())
    return sorted(
        SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )


def _message_key(campaign: Campaign, run: Run, customer_id: int) -> str:
    return f"campaign:{campaign.pk}:run:{run.number}:customer:{customer_id}"


def _queue(campaign: Campaign, run: Run, rows: list[tuple[int, str, str]]) -> None:
    """Queue messages for (customer, address, variant) rows of a run, as plain column inserts."""
    if not rows:
        return
    templates = {v.label: v.template_id for v in campaign.variants.all()}
    now = timezone.now()
    purpose = Message._meta.get_field("address").purpose  # type: ignore[attr-defined]
    given = [i for i, (_, address, _) in enumerate(rows) if address]
    addresses = [""] * len(rows)
    for i, stored in zip(given, encrypt_many(purpose, [rows[i][1] for i in given]), strict=True):
        addresses[i] = stored
    columns = {
        "dedupe_key": [_message_key(campaign, run, customer_id) for customer_id, _, _ in rows],
        "customer": [customer_id for customer_id, _, _ in rows],
        "template": [templates.get(variant, campaign.template_id) for _, _, variant in rows],
        "variant": [variant for _, _, variant in rows],
        "address": addresses,
    }
    fixed = {
        "campaign": campaign.pk,
        "run": run.pk,
        "source": f"campaign:{campaign.pk}",
        "channel": campaign.channel,
        "purpose": campaign.template.purpose,
        "status": Message.Status.QUEUED,
        "skip_reason": "",
        "attempts": 0,
        "next_attempt_at": now,
        "claim_token": "",
        "provider_id": "",
        "error": "",
        "created_at": now,
    }
    # The ORM's objects cost more than the rows' writing; a run's keys are new (its number
    # is fresh under the campaign's lock), so nothing conflicts.
    insert_columns(Message, columns, fixed=fixed)


@transaction.atomic
def start_run(
    campaign: Campaign, *, by: Actor, now: datetime | None = None, check_channel: bool = True
) -> Run:
    """Evaluate the audience now and queue the messages: groups and skips recorded per customer.

    Order: restricted, merged, consent and address checks, the global control group, then the
    campaign's holdout among those who could be sent to (so both groups are comparable).
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    check_campaign(campaign, check_channel=check_channel)
    now = now or timezone.now()
    purpose = campaign.template.purpose
    is_marketing = purpose == Purpose.MARKETING
    members = select_segment_members(cast(Segment, campaign.segment))  # checked above
    number = (campaign.runs.aggregate(n=Max("number"))["n"] or 0) + 1
    run = Run.objects.create(
        campaign=campaign, number=number, started_at=now, audience=len(members)
    )
    standing = check_eligibility(members, campaign.channel, purpose)
    recipients: list[Recipient] = []
    targets: list[tuple[int, str]] = []
    skipped: Counter[str] = Counter()
    for customer_id in members:
        info = standing[customer_id]
        group, reason = Recipient.Group.TARGET, info.skip_reason
        if reason:
            group = Recipient.Group.SKIPPED
        elif is_marketing and is_in_control_group(customer_id):
            group, reason = Recipient.Group.CONTROL, "control_group"
        elif is_marketing and is_in_holdout(campaign.pk, customer_id, campaign.holdout_percent):
            group = Recipient.Group.HOLDOUT
        if reason:
            skipped[reason] += 1
        if reason == "erased":
            continue  # the customer is gone: counted, no row to point at
        recipients.append(
            Recipient(
                run=run, customer_id=customer_id, group=group, skip_reason=reason, assigned_at=now
            )
        )
        if group == Recipient.Group.TARGET:
            targets.append((customer_id, info.address))
    variants = [v.label for v in campaign.variants.all()]
    rows: list[tuple[int, str, str]]
    if len(variants) >= 2 and campaign.ab_test_percent > 0:
        shuffled = list(targets)
        random.Random(f"{campaign.pk}:{number}").shuffle(shuffled)  # noqa: S311 -- a split, not a secret
        test_size = max(len(variants), round(len(shuffled) * campaign.ab_test_percent / 100))
        test = shuffled[:test_size]
        assigned = {cid: variants[i % len(variants)] for i, (cid, _) in enumerate(test)}
        rows = [(cid, address, assigned[cid]) for cid, address in test]
        for recipient in recipients:
            if recipient.group == Recipient.Group.TARGET:
                if recipient.customer_id in assigned:
                    recipient.variant = assigned[recipient.customer_id]
                else:
                    recipient.group = Recipient.Group.WAITING
        run.test_ends_at = now + timedelta(hours=campaign.ab_window_hours)
        campaign.status = Campaign.Status.TESTING
    else:
        rows = [(cid, address, "") for cid, address in targets]
        campaign.status = (
            Campaign.Status.SCHEDULED if campaign.is_recurring else Campaign.Status.SENDING
        )
    insert_columns(
        Recipient,
        {
            "customer": [r.customer_id for r in recipients],
            "group": [r.group for r in recipients],
            "variant": [r.variant for r in recipients],
            "skip_reason": [r.skip_reason for r in recipients],
        },
        fixed={"run": run.pk, "assigned_at": now},
    )
    _queue(campaign, run, rows)
    run.skipped = dict(skipped)
    run.save(update_fields=["skipped", "test_ends_at"])
    if campaign.is_recurring:
        step = timedelta(days=1 if campaign.schedule == Campaign.Schedule.DAILY else 7)
        following = campaign.next_run_at or now
        while following <= now:
            following += step
        campaign.next_run_at = following
    else:
        campaign.next_run_at = None
    campaign.last_error = ""
    campaign.save(update_fields=["status", "next_run_at", "last_error", "updated_at"])
    record_event(
        CHANGE,
        actor=by,
        target=campaign,
        detail={
            "action": "send",
            "run": number,
            "audience": len(members),
            "queued": len(rows),
            **skipped,
        },
    )
    wake = [now]
    if run.test_ends_at:
        wake.append(run.test_ends_at)
    if campaign.is_recurring and campaign.next_run_at:
        wake.append(campaign.next_run_at)
    transaction.on_commit(lambda: _wake_at(wake))
    return run


def _wake_at(moments: list[datetime]) -> None:
    for moment in moments:
        ensure_wakeup(moment)


def _conversion_by_variant(run: Run) -> dict[str, tuple[int, int]]:
    """Return (converted, sent) per variant of a run's test messages (a purchase since the send)."""
    from kequn.engage.selectors import count_conversions  # noqa: PLC0415 -- selectors import services' models only

    return count_conversions(run)


@transaction.atomic
def choose_winner(run: Run, *, by: Actor, now: datetime | None = None) -> str:
    """Pick the A/B variant with the best conversion rate and queue it to the waiting rest."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.winner:
        return run.winner
    campaign = run.campaign
    scores = _conversion_by_variant(run)
    labels = sorted(v.label for v in campaign.variants.all())
    # Best rate wins; a tie goes to the earlier label (A before B), so the choice is stable.
    winner = max(labels, key=lambda label: (_rate(scores.get(label)), -labels.index(label)))
    run.winner = winner
    run.save(update_fields=["winner"])
    waiting = list(
        run.recipients.filter(group=Recipient.Group.WAITING).values_list("customer_id", flat=True)
    )
    standing = check_eligibility(waiting, campaign.channel, campaign.template.purpose)
    rows = [
        (cid, standing[cid].address, winner) for cid in waiting if not standing[cid].skip_reason
    ]
    run.recipients.filter(group=Recipient.Group.WAITING).update(
        group=Recipient.Group.TARGET, variant=winner, assigned_at=now or timezone.now()
    )
    _queue(campaign, run, rows)
    # Those no longer eligible get a skipped message, so their reason is counted.
    for cid in waiting:
        if standing[cid].skip_reason:
            Message.objects.get_or_create(
                dedupe_key=_message_key(campaign, run, cid),
                defaults={
                    "campaign": campaign,
                    "run": run,
                    "source": f"campaign:{campaign.pk}",
                    "customer_id": cid if standing[cid].skip_reason != "erased" else None,
                    "template_id": campaign.template_id,
                    "variant": winner,
                    "channel": campaign.channel,
                    "purpose": campaign.template.purpose,
                    "status": Message.Status.SKIPPED,
                    "skip_reason": standing[cid].skip_reason,
                },
            )
    Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.TESTING).update(
        status=Campaign.Status.SCHEDULED if campaign.is_recurring else Campaign.Status.SENDING
    )
    record_event(
        CHANGE,
        actor=by,
        target=campaign,
        detail={"action": "ab_winner", "run": run.number, "winner": winner},
    )
    transaction.on_commit(ensure_wakeup)
    return winner


def _rate(score: tuple[int, int] | None) -> float:
    if not score or not score[1]:
        return 0.0
    return score[0] / score[1]


def send_campaign(
    campaign: Campaign,
    *,
    by: Actor,
    foreground: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Start a run now; in the foreground also send its due messages here (else the worker does)."""
    run = start_run(campaign, by=by)
    result: dict[str, Any] = {"run": run.number, "audience": run.audience, "skipped": run.skipped}
    if foreground:
        stats = send_due_messages(campaign_id=campaign.pk, progress=progress)
        result.update(stats.as_dict())
        finish_campaigns()
    return result


def finish_campaigns() -> list[int]:
    """Mark one-off campaigns sent when nothing of theirs waits; return their ids."""
    finished = []
    for campaign in Campaign.objects.filter(status=Campaign.Status.SENDING):
        if not campaign.messages.filter(status__in=[*PENDING, Message.Status.SENDING]).exists():
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
                status=Campaign.Status.SENT
            )
            Run.objects.filter(campaign=campaign, finished_at__isnull=True).update(
                finished_at=timezone.now()
            )
            finished.append(campaign.pk)
    return finished


def pump_outbox(*, by: Actor, now: datetime | None = None) -> dict[str, Any]:
    """The worker's pass: start due campaigns, close A/B tests, send what is due, plan the next."""
    now = now or timezone.now()
    started, errors = [], []
    for campaign in Campaign.objects.filter(
        status=Campaign.Status.SCHEDULED, next_run_at__lte=now
    ).select_related("segment", "template"):
        try:
            start_run(campaign, by=by, now=now)
            started.append(campaign.pk)
        except CampaignError as exc:
            message = " ".join(exc.messages)
            Campaign.objects.filter(pk=campaign.pk).update(
                status=Campaign.Status.FAILED, last_error=message[:500]
            )
            errors.append(message)
    for run in Run.objects.filter(test_ends_at__lte=now, winner="").select_related("campaign"):
        choose_winner(run, by=by, now=now)
    stats = send_due_messages()
    finish_campaigns()
    moments = [get_next_due()]
    moments.append(
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED, next_run_at__isnull=False)
        .order_by("next_run_at")
        .values_list("next_run_at", flat=True)
        .first()
    )
    moments.append(
        Run.objects.filter(winner="", test_ends_at__isnull=False)
        .order_by("test_ends_at")
        .values_list("test_ends_at", flat=True)
        .first()
    )
    upcoming = [m for m in moments if m is not None]
    if upcoming:
        ensure_wakeup(max(min(upcoming), timezone.now() + timedelta(seconds=1)))
    return {"started": started, "errors": errors, **stats.as_dict()}


@transaction.atomic
def record_offline_sends(run: Run, *, sent_at: datetime, by: Actor) -> int:
    """Mark a run's queued messages sent at a past moment, without a channel (demo data only)."""
    count = run.messages.filter(status__in=PENDING).update(
        status=Message.Status.SENT, sent_at=sent_at, attempts=1, provider_id="demo"
    )
    Run.objects.filter(pk=run.pk).update(finished_at=sent_at)
    Campaign.objects.filter(pk=run.campaign_id, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.SENT
    )
    record_event(
        CHANGE, actor=by, target=run.campaign, detail={"action": "offline_sends", "count": count}
    )
    return count
