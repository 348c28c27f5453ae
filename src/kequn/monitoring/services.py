"""Raise, notify, acknowledge and resolve security alerts (the only code that changes them)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.monitoring.config import AlertConfig, load_alert_config
from kequn.monitoring.models import Alert
from kequn.monitoring.rules import RULES, Finding
from kequn.security import roles
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
BADGE_CACHE_KEY = "monitoring:open-alerts"
WEBHOOK_TIMEOUT_SECONDS = 5


class AlertError(Exception):
    """A refused change to an alert (unknown id, already resolved); the message says which."""


def raise_alert(finding: Finding, *, by: Actor) -> Alert | None:
    """Store a finding as an alert with its audit entry; None if its fingerprint exists."""
    if Alert.objects.filter(fingerprint=finding.fingerprint).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=finding.rule,
                severity=finding.severity,
                title=finding.title[:300],
                subject_user=finding.subject_user[:150],
                subject_ip=finding.subject_ip,
                details=finding.details,
                audit_entries=finding.audit_entries,
                fingerprint=finding.fingerprint[:200],
            )
            audit.record_event(
                audit.CREATE,
                actor=by,
                target=alert,
                detail={"rule": alert.rule, "severity": alert.severity},
            )
    except IntegrityError:  # another worker raised the same finding a moment earlier
        return None
    cache.delete(BADGE_CACHE_KEY)
    return alert


def evaluate_rules(
    *, by: Actor, now: datetime | None = None, config: AlertConfig | None = None
) -> list[Alert]:
    """Run every rule, store new findings as alerts and notify them; return the new alerts."""
    now = now or timezone.now()
    config = config or load_alert_config()
    raised = []
    for name, rule in RULES.items():
        try:
            findings = rule(config, now)
        except Exception:  # one broken rule must not silence the others
            logger.exception("alert rule %s failed", name)
            continue
        for finding in findings:
            alert = raise_alert(finding, by=by)
            if alert is not None:
                raised.append(alert)
    for alert in raised:
        if SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[config.min_severity]:
            notify_alert(alert, config)
    return raised


def get_recipients(config: AlertConfig) -> list[str]:
    """Return the addresses alerts go to: active administrators' and the configured ones."""
    found: list[str] = []
    if config.email_administrators:
        users = get_user_model().objects.filter(is_active=True).exclude(email="")
        admins = users.filter(is_superuser=True) | users.filter(groups__name=roles.ADMINISTRATOR)
        found.extend(sorted(set(admins.values_list("email", flat=True))))
    found.extend(e for e in config.emails if e not in found)
    return found


def describe_alert(alert: Alert) -> dict:
    """Return an alert as the JSON the webhook receives (no customer data is in an alert)."""
    return {
        "id": alert.pk,
        "rule": alert.rule,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        "user": alert.subject_user,
        "ip": alert.subject_ip,
        "details": alert.details,
        "audit_entries": alert.audit_entries,
        "raised_at": alert.created_at.isoformat(),
    }


def notify_alert(alert: Alert, config: AlertConfig) -> None:
    """Email the alert to the recipients and post it to the webhook; note any failure on it."""
    errors = []
    recipients = get_recipients(config)
    if recipients:
        body = "\n".join(
            [
                alert.title,
                "",
                _("Rule: %(rule)s, severity: %(severity)s")
                % {"rule": alert.rule, "severity": alert.get_severity_display()},
                _("Audit entries: %(ids)s")
                % {"ids": ", ".join(str(s) for s in alert.audit_entries[:50]) or "-"},
                _("Acknowledge it in the back office or with `kequn alerts ack %(id)s`.")
                % {"id": alert.pk},
            ]
        )
        try:
            send_mail(f"[Kequn] {alert.title}"[:200], body, None, recipients, fail_silently=False)
        except Exception as exc:  # the alert is stored whatever the mail server says
            errors.append(f"email: {type(exc).__name__}: {exc}")
    if config.webhook_url:
        data = json.dumps(describe_alert(alert), ensure_ascii=False).encode()
        request = urllib.request.Request(  # noqa: S310 -- the operator's http(s) URL, checked in config
            config.webhook_url,
            data=data,
            headers={"Content-Type": "application/json", "User-Agent": "kequn-alerts"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as answer:  # noqa: S310 -- as above
                answer.read(1024)
        except (urllib.error.URLError, OSError) as exc:
            errors.append(f"webhook: {exc}")
    Alert.objects.filter(pk=alert.pk).update(
        notified_at=timezone.now(), notify_error="; ".join(errors)[:500]
    )
    for error in errors:
        logger.warning("alert #%s not delivered: %s", alert.pk, error)


def _change_status(alert_id: int, status: str, *, by: Actor, note: str = "") -> Alert:
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None:
            raise AlertError(_("There is no alert #%(id)s.") % {"id": alert_id})
        if alert.status == Alert.Status.RESOLVED:
            raise AlertError(_("Alert #%(id)s is already resolved.") % {"id": alert_id})
        if status == Alert.Status.ACKNOWLEDGED and alert.status == status:
            return alert
        name = by.get_username()
        now = timezone.now()
        if status == Alert.Status.ACKNOWLEDGED:
            alert.acknowledged_at, alert.acknowledged_by = now, name[:150]
        else:
            alert.resolved_at, alert.resolved_by = now, name[:150]
            if not alert.acknowledged_at:
                alert.acknowledged_at, alert.acknowledged_by = now, name[:150]
        previous, alert.status = alert.status, status
        if note:
            alert.note = f"{alert.note}\n{note}".strip()
        alert.save()
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=alert,
            detail={"status": [previous, status], "rule": alert.rule},
        )
    cache.delete(BADGE_CACHE_KEY)
    return alert


def acknowledge_alert(alert_id: int, *, by: Actor, note: str = "") -> Alert:
    """Mark an alert as seen and being handled."""
    return _change_status(alert_id, Alert.Status.ACKNOWLEDGED, by=by, note=note)


def resolve_alert(alert_id: int, *, by: Actor, note: str = "") -> Alert:
    """Close an alert (acknowledging it too if nobody had)."""
    return _change_status(alert_id, Alert.Status.RESOLVED, by=by, note=note)


def change_alerts(alert_ids: Iterable[int], status: str, *, by: Actor) -> int:
    """Acknowledge or resolve several alerts; return how many changed (resolved ones are skipped)."""
    changed = 0
    for alert_id in alert_ids:
        try:
            _change_status(alert_id, status, by=by)
            changed += 1
        except AlertError:
            continue
    return changed
