"""Service jobs: email replies out, the inbound mailbox, SLA checks (run by `kequn worker`)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from kequn.security.actors import system_actor
from kequn.service import services
from kequn.service.delivery import deliver_reply_task, retry_pending_deliveries

__all__ = ["deliver_reply_task", "fetch_mail_task", "sla_check_task"]


@task()
def fetch_mail_task() -> dict[str, Any]:
    """Poll the inbound mailbox once (KEQUN_SERVICE_IMAP_URL); nothing when it is unset."""
    from kequn.service.mailbox import fetch_mail, is_configured  # noqa: PLC0415 -- imaplib on demand

    if not is_configured():
        return {"skipped": "KEQUN_SERVICE_IMAP_URL is not set"}
    return fetch_mail(by=system_actor("service-fetch-mail"))


@task()
def sla_check_task() -> dict[str, int]:
    """Record SLA warnings and breaches and escalate; queue replies not yet sent (every few minutes)."""
    counts = services.check_slas(by=system_actor("service-sla-check"))
    counts["replies_requeued"] = retry_pending_deliveries()
    return counts
