"""The built-in steps: wait, branch on a rule, send, tag, webhook, A/B split, exit on goal.

Registered from JourneysConfig.ready() like any other app's steps (see kequn.journeys.registry).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer, CustomerTag, Tag
from kequn.customers.services import delete_record, tag_customers
from kequn.engage.services import queue_message
from kequn.journeys.registry import StepContext, StepResult, register_step
from kequn.journeys.services import check_goal, is_goal_reached
from kequn.segments.services import check_rule, select_rule_members

TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
WEBHOOK_RETRIES = 5
CHANNELS = ("email", "sms", "wechat", "webhook")


# ---------------------------------------------------------------- wait


def _number(config: Mapping[str, Any], key: str) -> float:
    value = config.get(key, 0) or 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a number of 0 or more (got {value!r})")
    return float(value)


def check_wait(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of a wait: days/hours/minutes and/or a local time of day "HH:MM"."""
    problems = []
    try:
        total = sum(_number(config, k) for k in ("days", "hours", "minutes"))
    except ValueError as exc:
        return [str(exc)]
    at = config.get("at")
    if at and not TIME_OF_DAY.match(str(at)):
        problems.append(f'at must be a time of day such as "09:30" (got {at!r})')
    if not total and not at:
        problems.append('a wait needs days, hours, minutes or a time of day ("at": "09:00")')
    return problems


def compute_wake(config: Mapping[str, Any], now: datetime) -> datetime:
    """Return when a wait that starts now ends: after the duration, then at the next time of day."""
    wake = now + timedelta(
        days=_number(config, "days"),
        hours=_number(config, "hours"),
        minutes=_number(config, "minutes"),
    )
    at = config.get("at")
    if at:
        hour, minute = (int(p) for p in str(at).split(":"))
        local = timezone.localtime(wake)
        candidate = timezone.make_aware(
            datetime.combine(local.date(), time(hour, minute)), local.tzinfo
        )
        if candidate < local:
            candidate = timezone.make_aware(
                datetime.combine(local.date() + timedelta(days=1), time(hour, minute)),
                local.tzinfo,
            )
        wake = candidate
    return wake


def run_wait(context: StepContext) -> StepResult:
    """Wait for the configured time, then go on."""
    if context.resumed:
        return StepResult("next")
    return StepResult("wait", wake_at=compute_wake(context.config, context.now))


# ---------------------------------------------------------------- branch


def check_branch(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of a branch: a valid segment-style rule and the two targets."""
    problems = []
    try:
        check_rule(config.get("rule"))
    except ValidationError as exc:
        problems.append("rule: " + " ".join(exc.messages))
    if not config.get("yes") and not config.get("no"):
        problems.append('a branch needs a "yes" or a "no" step (the other goes to "next")')
    return problems


def branch_targets(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return the branch's targets (label, step id)."""
    return [(label, str(config[label])) for label in ("yes", "no") if config.get(label)]


def run_branch(context: StepContext) -> StepResult:
    """Go to "yes" when the customer matches the rule now, else to "no" (else to "next")."""
    matched = select_rule_members(context.config["rule"]).filter(pk=context.customer_id).exists()
    label = "yes" if matched else "no"
    return StepResult("next", next_step=context.config.get(label) or None, branch=label)


# ---------------------------------------------------------------- A/B split


def check_split(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of an A/B split: named variants whose percents add up to 100."""
    variants = config.get("variants")
    if not isinstance(variants, list) or len(variants) < 2:
        return ['a split needs "variants": at least two of {"name", "percent", "next"}']
    problems = []
    total = 0
    names = set()
    for index, variant in enumerate(variants):
        if not isinstance(variant, dict) or not str(variant.get("name") or "").strip():
            problems.append(f"variants[{index}]: needs a name")
            continue
        if variant["name"] in names:
            problems.append(f"variants[{index}]: name {variant['name']!r} is used twice")
        names.add(variant["name"])
        percent = variant.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            problems.append(f"variants[{index}]: percent must be a whole number from 0 to 100")
        else:
            total += percent
    if not problems and total != 100:
        problems.append(f"the variants' percents add up to {total}, not 100")
    return problems


def split_targets(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return each variant's target (name, step id)."""
    return [
        (str(v.get("name")), str(v["next"]))
        for v in config.get("variants") or []
        if isinstance(v, dict) and v.get("next")
    ]


def pick_variant(variants: list[dict[str, Any]], seed: str) -> dict[str, Any]:
    """Return the variant a seed falls in: the same customer always gets the same one."""
    bucket = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % 100
    upper = 0
    for variant in variants:
        upper += int(variant.get("percent") or 0)
        if bucket < upper:
            return variant
    return variants[-1]


def run_split(context: StepContext) -> StepResult:
    """Send each customer down one variant, deterministically by customer, journey and step."""
    seed = f"{context.journey.pk}:{context.step['id']}:{context.customer_id}"
    variant = pick_variant(list(context.config["variants"]), seed)
    return StepResult("next", next_step=variant.get("next") or None, branch=str(variant["name"]))


# ---------------------------------------------------------------- tags


def check_tag(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of a tag step: a tag by id or name, add or remove."""
    problems = []
    if not config.get("tag"):
        problems.append('a tag step needs "tag": a tag id or name')
    if config.get("action", "add") not in ("add", "remove"):
        problems.append('action must be "add" or "remove"')
    return problems


def _find_tag(value: Any, *, create: bool) -> Tag | None:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return Tag.objects.filter(pk=int(value)).first()
    tag = Tag.objects.filter(name=str(value), group__isnull=True).first()
    if tag is None:
        tag = Tag.objects.filter(name=str(value)).order_by("id").first()
    if tag is None and create:
        tag = Tag.objects.create(name=str(value)[:100])
    return tag


def run_tag(context: StepContext) -> StepResult:
    """Add the tag to the customer or take it off (doing it twice changes nothing)."""
    action = context.config.get("action", "add")
    tag = _find_tag(context.config["tag"], create=action == "add")
    if tag is None:
        return StepResult("next", detail={"tag": str(context.config["tag"]), "changed": 0})
    customer = Customer.objects.get(pk=context.customer_id)
    if action == "add":
        changed = tag_customers([customer], tag, by=context.by)
    else:
        link = CustomerTag.objects.filter(customer=customer, tag=tag).first()
        changed = 0
        if link is not None:
            delete_record(link, by=context.by)
            changed = 1
    return StepResult("next", detail={"tag": tag.pk, "action": action, "changed": changed})


# ---------------------------------------------------------------- send (through engage)


def check_send(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of a send step: a template id and a channel."""
    problems = []
    template = config.get("template")
    if isinstance(template, bool) or not isinstance(template, int) or template <= 0:
        problems.append('a send step needs "template": the id of a message template')
    if config.get("channel") not in CHANNELS:
        problems.append(f"channel must be one of {', '.join(CHANNELS)}")
    if config.get("purpose", "marketing") not in ("marketing", "transactional", "service"):
        problems.append("purpose must be marketing, transactional or service")
    return problems


def run_send(context: StepContext) -> StepResult:
    """Queue the message in engage's outbox (consent, caps and control group are checked there)."""
    outcome = queue_message(
        customer_id=context.customer_id,
        template_id=int(context.config["template"]),
        channel=str(context.config["channel"]),
        purpose=str(context.config.get("purpose", "marketing")),
        source=f"journey:{context.journey.pk}:{context.step['id']}",
        dedupe_key=context.dedupe_key,
        by=context.by,
    )
    return StepResult("next", detail=describe_outcome(outcome), branch=_outcome_branch(outcome))


def _skip_reason(outcome: Any) -> str:
    for name in ("skip_reason", "reason", "skipped"):
        value = getattr(outcome, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def describe_outcome(outcome: Any) -> dict[str, Any]:
    """Return what the history keeps of a queued (or skipped) message: ids and reasons only."""
    reason = _skip_reason(outcome)
    if reason:
        return {"skipped": reason}
    message = getattr(outcome, "message", None)
    message_id = getattr(message, "pk", None) or getattr(outcome, "message_id", None)
    return {"queued": True, "message": message_id}


def _outcome_branch(outcome: Any) -> str:
    return "skipped" if _skip_reason(outcome) else "queued"


# ---------------------------------------------------------------- webhook


def check_webhook(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of a webhook step: an http(s) URL."""
    url = str(config.get("url") or "")
    if not re.match(r"^https?://[^\s/]+", url):
        return ['a webhook step needs "url": an http:// or https:// address']
    return []


def run_webhook(context: StepContext) -> StepResult:
    """POST the enrollment to the URL (signed by the webhook channel); retry 5xx with backoff."""
    from kequn.engage.channels import (  # noqa: PLC0415 -- loads HTTP clients only when used
        ChannelNotConfiguredError,
        ChannelUnavailableError,
        OutgoingMessage,
        get_channel,
    )

    journey, step = context.journey, context.step
    message = OutgoingMessage(
        key=context.dedupe_key,
        to=str(context.config["url"]),
        payload={
            "journey": {"id": journey.pk, "name": journey.name},
            "step": str(step["id"]),
            "enrollment": context.enrollment.pk,
            "customer_id": context.customer_id,
            "data": dict(context.config.get("data") or {}),
            "key": context.dedupe_key,
        },
    )
    try:
        channel = get_channel("webhook")
    except ChannelNotConfiguredError as exc:
        return StepResult("exit", reason=f"webhook: {exc}")
    try:
        result = channel.send_batch([message])[0]
        status, error = result.status, result.error
    except ChannelUnavailableError as exc:
        status, error = "retry", str(exc)
    finally:
        channel.close()
    detail = {"url_host": re.sub(r"^https?://([^/]+).*$", r"\1", message.to), "status": status}
    if status == "sent":
        return StepResult("next", detail=detail, branch="sent")
    if status == "retry" and context.attempts + 1 < WEBHOOK_RETRIES:
        context.enrollment.attempts = context.attempts + 1
        delay = timedelta(seconds=30 * 2**context.attempts)
        return StepResult("wait", wake_at=context.now + delay, detail={**detail, "error": error})
    # Failed for good (or out of retries): recorded, and the journey goes on without it.
    return StepResult("next", detail={**detail, "error": error}, branch="failed")


# ---------------------------------------------------------------- exit on goal


def check_goal_step(config: Mapping[str, Any]) -> list[str]:
    """Return the problems of an exit-on-goal step (its own goal, or the journey's)."""
    goal = config.get("goal")
    return [] if goal is None else check_goal(goal)


def run_goal(context: StepContext) -> StepResult:
    """Leave the journey when the goal is reached (a purchase since entering, by default)."""
    goal = context.config.get("goal") or context.journey.goal or {"kind": "purchase"}
    if is_goal_reached(goal, context.customer_id, context.enrollment.entered_at):
        return StepResult("exit", reason="goal reached", branch="reached")
    return StepResult("next", branch="not reached")


def run_exit(context: StepContext) -> StepResult:
    """Leave the journey here."""
    return StepResult("exit", reason=str(context.config.get("reason") or "exit step"))


def register_builtin_steps() -> None:
    """Register the steps journeys bring themselves."""
    register_step(
        "wait",
        _("Wait"),
        run_wait,
        config_fields={
            "days": _("days"),
            "hours": _("hours"),
            "minutes": _("minutes"),
            "at": _("then until this local time (HH:MM)"),
        },
        check_config=check_wait,
    )
    register_step(
        "branch",
        _("Branch on a rule"),
        run_branch,
        config_fields={
            "rule": _("segment-style rule"),
            "yes": _("step if it matches"),
            "no": _("step if not"),
        },
        check_config=check_branch,
        get_targets=branch_targets,
    )
    register_step(
        "split",
        _("A/B split"),
        run_split,
        config_fields={"variants": _("variants: name, percent, next step")},
        check_config=check_split,
        get_targets=split_targets,
    )
    register_step(
        "send",
        _("Send a message"),
        run_send,
        config_fields={
            "template": _("template id"),
            "channel": _("channel"),
            "purpose": _("purpose"),
        },
        check_config=check_send,
    )
    register_step(
        "tag",
        _("Add or remove a tag"),
        run_tag,
        config_fields={"tag": _("tag id or name"), "action": _("add or remove")},
        check_config=check_tag,
    )
    register_step(
        "webhook",
        _("Call a webhook"),
        run_webhook,
        config_fields={"url": _("URL"), "data": _("extra data")},
        check_config=check_webhook,
    )
    register_step(
        "goal",
        _("Exit on goal"),
        run_goal,
        config_fields={"goal": _("goal (default: the journey's, else a purchase)")},
        check_config=check_goal_step,
    )
    register_step("exit", _("Exit"), run_exit, config_fields={"reason": _("reason")})
