"""Engagement services: the only code that changes engagement data (campaigns, outbox, consent)."""

from __future__ import annotations

from kequn.engage.services.campaigns import (
    CampaignError,
    check_campaign,
    check_template_sources,
    choose_winner,
    create_campaign,
    create_template,
    finish_campaigns,
    pump_outbox,
    record_offline_sends,
    send_campaign,
    start_run,
)
from kequn.engage.services.outbox import (
    QueueOutcome,
    SendStats,
    ensure_wakeup,
    make_unsubscribe_url,
    queue_message,
    read_unsubscribe_token,
    record_message_event,
    send_due_messages,
    suppress_address,
)
from kequn.engage.services.unsubscribe import unsubscribe

__all__ = [
    "CampaignError",
    "QueueOutcome",
    "SendStats",
    "check_campaign",
    "check_template_sources",
    "choose_winner",
    "create_campaign",
    "create_template",
    "ensure_wakeup",
    "finish_campaigns",
    "make_unsubscribe_url",
    "pump_outbox",
    "queue_message",
    "read_unsubscribe_token",
    "record_message_event",
    "record_offline_sends",
    "send_campaign",
    "send_due_messages",
    "start_run",
    "suppress_address",
    "unsubscribe",
]
