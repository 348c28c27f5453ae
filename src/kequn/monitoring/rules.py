"""The security alert rules: each reads the audit trail (or backups, keys) and returns findings.

A finding carries a fingerprint (rule, subject, period): evaluating the rules again, after a
restart or in two workers at once, raises no second alert for the same finding.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import chinese_calendar
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from kequn.monitoring.config import AlertConfig
from kequn.monitoring.models import RuleState
from kequn.security import roles
from kequn.security.audit import services as audit
from kequn.security.audit.head import read_pinned_head
from kequn.security.audit.models import AuditEntry
from kequn.security.backups.schedule import list_backups

logger = logging.getLogger(__name__)

# Linked audit entries kept on one alert (the details say how many there were).
MAX_LINKED = 200
BACKUP_TASK = "kequn.security.tasks.nightly_backup_task"
DECRYPTION_CACHE_KEY = "monitoring:decryption-errors"


@dataclass
class Finding:
    """What a rule noticed; becomes an alert unless one with its fingerprint exists."""

    rule: str
    severity: str
    title: str
    fingerprint: str
    subject_user: str = ""
    subject_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    audit_entries: list[int] = field(default_factory=list)


def hour_bucket(now: datetime) -> str:
    """Return the local hour a finding belongs to (one alert per subject per hour)."""
    return f"{timezone.localtime(now):%Y%m%d%H}"


def records_in(entry: AuditEntry) -> int:
    """Return how many customers' unmasked records an audit entry stands for."""
    detail = entry.detail or {}
    if entry.action == audit.VIEW_PERSONAL:
        return int(detail.get("count") or 1)
    # Exports: the segment export says whether the user saw unmasked data; a list export
    # masks by the user's role, so it counts only for roles that see unmasked fields.
    if detail.get("unmasked") is False:
        return 0
    return int(detail.get("rows") or 0)


def get_role_of(usernames: Iterable[str]) -> dict[str, str]:
    """Return each user's role (its first role group; "superuser" or "" otherwise)."""
    found: dict[str, str] = {}
    users = get_user_model().objects.filter(username__in=set(usernames)).prefetch_related("groups")
    for user in users:
        groups = [g.name for g in user.groups.all() if g.name in roles.ROLES]
        found[user.username] = groups[0] if groups else ("superuser" if user.is_superuser else "")
    return found


def check_unmasked_volume(config: AlertConfig, now: datetime) -> list[Finding]:
    """Flag users who saw or exported far more unmasked records than their usual hour.

    The usual hour is the user's own average over the hours they were active in the
    baseline period; a user with fewer than three active hours is compared with the
    average hour of their role's users instead.
    """
    window = timedelta(minutes=config.window_minutes)
    start = now - window
    actions = [audit.VIEW_PERSONAL, audit.EXPORT]
    recent: dict[str, list[AuditEntry]] = defaultdict(list)
    for entry in (
        AuditEntry.objects.filter(action__in=actions, created_at__gt=start, created_at__lte=now)
        .exclude(actor_username="")
        .order_by("sequence")
    ):
        recent[entry.actor_username].append(entry)
    totals = {user: sum(records_in(e) for e in entries) for user, entries in recent.items()}
    suspects = {u for u, n in totals.items() if n >= config.volume_min_records}
    if not suspects:
        return []
    # Baselines: records per active hour over baseline_days before the window.
    base_start = start - timedelta(days=config.baseline_days)
    hourly: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    history = AuditEntry.objects.filter(
        action__in=actions, created_at__gt=base_start, created_at__lte=start
    ).exclude(actor_username="")
    for entry in history.only("actor_username", "created_at", "action", "detail").iterator(
        chunk_size=2000
    ):
        hourly[entry.actor_username][f"{entry.created_at:%Y%m%d%H}"] += records_in(entry)
    role_of = get_role_of(set(hourly) | suspects)
    role_hours: dict[str, list[int]] = defaultdict(list)
    for user, hours in hourly.items():
        role_hours[role_of.get(user, "")].extend(hours.values())
    findings = []
    for user in sorted(suspects):
        own = list(hourly.get(user, {}).values())
        role = role_of.get(user, "")
        if len(own) >= 3:
            baseline, basis = sum(own) / len(own), "user"
        elif role_hours.get(role):
            baseline, basis = sum(role_hours[role]) / len(role_hours[role]), "role"
        else:
            baseline, basis = 0.0, "none"
        scale = window / timedelta(hours=1)
        expected = baseline * scale
        if totals[user] <= config.volume_factor * expected:
            continue
        entries = recent[user]
        findings.append(
            Finding(
                rule="unmasked_volume",
                severity="critical"
                if totals[user] > 4 * config.volume_factor * expected
                else "warning",
                title=_("%(user)s saw or exported %(n)s unmasked records in %(m)s minutes")
                % {"user": user, "n": totals[user], "m": config.window_minutes},
                fingerprint=f"unmasked_volume:{user}:{hour_bucket(now)}",
                subject_user=user,
                subject_ip=next((e.ip_address for e in entries if e.ip_address), None),
                details={
                    "records": totals[user],
                    "baseline_per_window": round(expected, 1),
                    "baseline": basis,
                    "role": role,
                    "entries": len(entries),
                },
                audit_entries=[e.sequence for e in entries][:MAX_LINKED],
            )
        )
    return findings


def check_failed_logins(config: AlertConfig, now: datetime) -> list[Finding]:
    """Flag one address failing across many user names, and one user name from many addresses."""
    start = now - timedelta(minutes=config.window_minutes)
    failures = list(
        AuditEntry.objects.filter(
            action=audit.LOGIN_FAILED, created_at__gt=start, created_at__lte=now
        )
        .only("sequence", "ip_address", "detail")
        .order_by("sequence")
    )
    by_ip: dict[str, list[AuditEntry]] = defaultdict(list)
    by_name: dict[str, list[AuditEntry]] = defaultdict(list)
    for entry in failures:
        name = str((entry.detail or {}).get("username", ""))
        if entry.ip_address:
            by_ip[entry.ip_address].append(entry)
        by_name[name].append(entry)
    findings = []
    bucket = hour_bucket(now)
    for ip, entries in sorted(by_ip.items()):
        names = {str((e.detail or {}).get("username", "")) for e in entries}
        if len(names) >= config.failed_usernames_per_ip:
            findings.append(
                Finding(
                    rule="login_spray",
                    severity="critical",
                    title=_("Failed logins for %(n)s user names from %(ip)s")
                    % {"n": len(names), "ip": ip},
                    fingerprint=f"login_spray:{ip}:{bucket}",
                    subject_ip=ip,
                    details={"usernames": len(names), "failures": len(entries)},
                    audit_entries=[e.sequence for e in entries][:MAX_LINKED],
                )
            )
    for name, entries in sorted(by_name.items()):
        ips = {e.ip_address for e in entries if e.ip_address}
        if len(ips) >= config.failed_ips_per_username:
            findings.append(
                Finding(
                    rule="login_distributed",
                    severity="critical",
                    title=_("Failed logins for %(user)s from %(n)s addresses")
                    % {"user": name[:60], "n": len(ips)},
                    fingerprint=f"login_distributed:{name[:100]}:{bucket}",
                    subject_user=name[:150],
                    details={"addresses": sorted(ips)[:50], "failures": len(entries)},
                    audit_entries=[e.sequence for e in entries][:MAX_LINKED],
                )
            )
    return findings


def is_working_time(config: AlertConfig, moment: datetime) -> bool:
    """Return whether a moment falls in the configured working hours on a working day."""
    local = timezone.localtime(moment)
    start, end = config.working_hours
    if not start <= local.time() <= end:
        return False
    return is_working_day(config, local.date())


def is_working_day(config: AlertConfig, day: date) -> bool:
    """Return whether a day is a working day (China's calendar with its 调休 days by default)."""
    if config.working_days == "all":
        return True
    if config.working_days == "workdays":
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # a year the installed calendar does not cover yet
            pass
    return day.weekday() < 5


def check_after_hours(config: AlertConfig, now: datetime) -> list[Finding]:
    """Flag personal data shown unmasked or exported outside working hours (per user and day)."""
    start = now - timedelta(minutes=config.window_minutes)
    late: dict[tuple[str, str], list[AuditEntry]] = defaultdict(list)
    for entry in (
        AuditEntry.objects.filter(
            action__in=[audit.VIEW_PERSONAL, audit.EXPORT],
            created_at__gt=start,
            created_at__lte=now,
        )
        .exclude(actor_username="")
        .order_by("sequence")
    ):
        if records_in(entry) and not is_working_time(config, entry.created_at):
            day = f"{timezone.localtime(entry.created_at):%Y-%m-%d}"
            late[(entry.actor_username, day)].append(entry)
    findings = []
    for (user, day), entries in sorted(late.items()):
        findings.append(
            Finding(
                rule="after_hours",
                severity="warning",
                title=_("%(user)s opened personal data outside working hours on %(day)s")
                % {"user": user, "day": day},
                fingerprint=f"after_hours:{user}:{day}",
                subject_user=user,
                subject_ip=next((e.ip_address for e in entries if e.ip_address), None),
                details={
                    "records": sum(records_in(e) for e in entries),
                    "first": timezone.localtime(entries[0].created_at).isoformat(),
                },
                audit_entries=[e.sequence for e in entries][:MAX_LINKED],
            )
        )
    return findings


def check_admin_new_address(config: AlertConfig, now: datetime) -> list[Finding]:
    """Flag an administrator signing in from an address or a browser never seen for them."""
    if not config.admin_new_address:
        return []
    start = now - timedelta(minutes=config.window_minutes)
    admins = get_user_model().objects.filter(is_active=True)
    admin_ids = set(admins.filter(is_superuser=True).values_list("pk", flat=True)) | set(
        admins.filter(groups__name=roles.ADMINISTRATOR).values_list("pk", flat=True)
    )
    findings = []
    logins = AuditEntry.objects.filter(
        action=audit.LOGIN, actor_id__in=admin_ids, created_at__gt=start, created_at__lte=now
    ).order_by("sequence")
    for entry in logins:
        earlier = AuditEntry.objects.filter(
            action=audit.LOGIN, actor_id=entry.actor_id, sequence__lt=entry.sequence
        )
        if not earlier.exists():
            continue  # a first login has nothing to compare with
        new_ip = bool(entry.ip_address) and not earlier.filter(ip_address=entry.ip_address).exists()
        new_agent = (
            bool(entry.user_agent) and not earlier.filter(user_agent=entry.user_agent).exists()
        )
        if not (new_ip or new_agent):
            continue
        what = _("a new address") if new_ip else _("a new browser or device")
        findings.append(
            Finding(
                rule="admin_new_address",
                severity="warning",
                title=_("Administrator %(user)s signed in from %(what)s")
                % {"user": entry.actor_username, "what": what},
                fingerprint=f"admin_new_address:{entry.sequence}",
                subject_user=entry.actor_username,
                subject_ip=entry.ip_address,
                details={"new_address": new_ip, "new_device": new_agent},
                audit_entries=[entry.sequence],
            )
        )
    return findings


def check_audit_chain(config: AlertConfig, now: datetime) -> list[Finding]:
    """Verify the audit chain (every audit_verify_hours) and flag the first broken entry."""
    if not config.audit_verify_hours:
        return []
    state, _created = RuleState.objects.get_or_create(rule="audit_chain")
    due = state.last_run_at is None or now - state.last_run_at >= timedelta(
        hours=config.audit_verify_hours
    )
    if not due:
        return []
    try:
        head = read_pinned_head()
    except Exception as exc:  # an unreadable head file is a finding, not a crash
        result_problem: tuple[int, str, str] | None = (0, "head", str(exc)[:300])
    else:
        result = audit.verify_chain(expect_head=head)
        problem = result.problem
        result_problem = (problem.sequence, problem.kind, str(problem.message)) if problem else None
    RuleState.objects.filter(pk=state.pk).update(last_run_at=now)
    if result_problem is None:
        return []
    seq, kind, message = result_problem
    return [
        Finding(
            rule="audit_chain",
            severity="critical",
            title=_("The audit trail failed verification: %(message)s") % {"message": message},
            fingerprint=f"audit_chain:{kind}:{seq}",
            details={"sequence": seq, "kind": kind},
            audit_entries=[seq] if seq else [],
        )
    ]


def check_backups(config: AlertConfig, now: datetime) -> list[Finding]:
    """Flag a failed nightly backup, and no readable backup newer than backup_max_age_hours."""
    findings = []
    since = now - timedelta(hours=config.backup_max_age_hours)
    for failed in DBTaskResult.objects.filter(
        task_path=BACKUP_TASK, status=TaskResultStatus.FAILED, finished_at__gt=since
    ):
        reason = (failed.traceback.strip().splitlines() or [failed.exception_class_path])[-1]
        findings.append(
            Finding(
                rule="backup_failed",
                severity="critical",
                title=_("The nightly backup failed: %(reason)s") % {"reason": reason[:200]},
                fingerprint=f"backup_failed:{failed.id}",
                details={"job": str(failed.id), "reason": reason[:500]},
            )
        )
    newest = None
    for path, header, _error in list_backups():
        if header is not None:
            newest = datetime.fromtimestamp(
                path.stat().st_mtime, tz=timezone.get_current_timezone()
            )
            break
    if newest is None or newest < since:
        age = (
            _("there is none")
            if newest is None
            else _("the newest is from %(when)s")
            % {"when": f"{timezone.localtime(newest):%Y-%m-%d %H:%M}"}
        )
        findings.append(
            Finding(
                rule="backup_missing",
                severity="critical",
                title=_("No backup in the last %(hours)s hours: %(age)s")
                % {"hours": config.backup_max_age_hours, "age": age},
                fingerprint=f"backup_missing:{timezone.localdate(now):%Y%m%d}",
                details={"newest": newest.isoformat() if newest else None},
            )
        )
    return findings


def note_decryption_error(field_name: str) -> None:
    """Count a decryption failure in the shared cache, for the next evaluation to report."""
    key = f"{DECRYPTION_CACHE_KEY}:{field_name}"
    try:
        if not cache.add(key, 1, timeout=7 * 24 * 3600):
            cache.incr(key)
        fields = set(cache.get(DECRYPTION_CACHE_KEY) or [])
        if field_name not in fields:
            cache.set(DECRYPTION_CACHE_KEY, sorted(fields | {field_name}), timeout=7 * 24 * 3600)
    except Exception:  # counting must never break the request that failed to decrypt
        logger.warning("monitoring: could not count a decryption error")


def check_decryption_errors(config: AlertConfig, now: datetime) -> list[Finding]:
    """Flag encrypted fields whose values failed to decrypt since the last evaluation."""
    findings = []
    for field_name in cache.get(DECRYPTION_CACHE_KEY) or []:
        key = f"{DECRYPTION_CACHE_KEY}:{field_name}"
        count = cache.get(key) or 0
        if not count:
            continue
        cache.delete(key)
        findings.append(
            Finding(
                rule="decryption_errors",
                severity="critical",
                title=_("%(n)s values of %(field)s could not be decrypted")
                % {"n": count, "field": field_name},
                fingerprint=f"decryption_errors:{field_name}:{hour_bucket(now)}",
                details={"field": field_name, "failures": count},
            )
        )
    cache.delete(DECRYPTION_CACHE_KEY)
    return findings


RULES: dict[str, Callable[[AlertConfig, datetime], list[Finding]]] = {
    "unmasked_volume": check_unmasked_volume,
    "failed_logins": check_failed_logins,
    "after_hours": check_after_hours,
    "admin_new_address": check_admin_new_address,
    "audit_chain": check_audit_chain,
    "backups": check_backups,
    "decryption_errors": check_decryption_errors,
}
