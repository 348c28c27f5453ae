"""The outbox: queue a message, and send what is due in claimed batches, each marked when sent.

Exactly once: a worker claims a batch (a token written by one UPDATE; PostgreSQL also skips
rows locked by another worker) and hands the whole batch to the channel, which sends over
several connections at once. Each connection waits, after the server accepted a message,
until the worker has recorded it as sent; the worker writes whatever has arrived meanwhile
in one statement. A worker killed mid-batch leaves its claimed rows "sending"; when the
claim lapses (KEQUN_SEND_LEASE_SECONDS) another pass sends them. The one case that can still
give a duplicate is a kill between the server accepting a message and that write (SMTP
itself cannot tell, RFC 1047): at most one message per connection, for a few milliseconds.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult, get_date_max

from kequn.engage import content, tracking
from kequn.engage.channels import (
    Channel,
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    SendResult,
    get_channel,
)
from kequn.engage.channels.email import EmailChannel
from kequn.engage.mailmerge import render_email_body
from kequn.engage.models import Campaign, Message, Purpose, Suppression, Template
from kequn.engage.policy import end_of_quiet_hours, get_caps, is_in_control_group
from kequn.engage.services.audience import (
    check_eligibility,
    get_tracking_consented,
    hash_address,
)
from kequn.security.actors import Actor

logger = logging.getLogger(__name__)

PENDING = (Message.Status.QUEUED, Message.Status.HELD, Message.Status.RETRYING)
MAX_ATTEMPTS = 8
UNSUBSCRIBE_SALT = "kequn.engage.unsubscribe"
PUMP_TASK = "kequn.engage.tasks.pump_outbox_task"
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 50, 10, 2000


@dataclass
class QueueOutcome:
    """What queue_message did: the outbox row (queued or skipped with its reason)."""

    message: Message
    created: bool

    @property
    def skip_reason(self) -> str:
        return self.message.skip_reason

    @property
    def is_queued(self) -> bool:
        return self.message.status != Message.Status.SKIPPED


@dataclass
class SendStats:
    """What a pass over the outbox did, by outcome, with the last channel error."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.counts, "errors": self.errors}


def get_lease() -> timedelta:
    """Return how long a worker's claim on a batch lasts."""
    return timedelta(seconds=settings.KEQUN_SEND_LEASE_SECONDS)


def get_backoff(attempts: int) -> timedelta:
    """Return the wait before the next attempt: 30 s doubling, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


@functools.lru_cache(maxsize=4)
def _unsubscribe_link_parts(public_url: str) -> tuple[str, str]:
    # Resolved once: reverse() per message cost more than signing the token.
    head, _, tail = reverse("engage-unsubscribe", args=["TOKEN"]).partition("TOKEN")
    return public_url.rstrip("/") + head, tail


def make_unsubscribe_url(customer_id: int, channel: str, source: str) -> str:
    """Return the signed one-click unsubscribe link of a customer on a channel."""
    token = signing.dumps({"c": customer_id, "ch": channel, "s": source}, salt=UNSUBSCRIBE_SALT)
    head, tail = _unsubscribe_link_parts(settings.KEQUN_PUBLIC_URL)
    return head + token + tail


def read_unsubscribe_token(token: str) -> dict[str, Any]:
    """Return what an unsubscribe token says; raise signing.BadSignature when it was altered."""
    data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        raise signing.BadSignature("malformed unsubscribe token")
    return data


def ensure_wakeup(at: datetime | None = None) -> None:
    """Make sure the worker passes over the outbox at ``at`` (now by default), once."""
    # The task is named, not imported: tasks.py imports these services.
    pump_outbox_task = import_string(PUMP_TASK)
    at = at or timezone.now()
    pending = DBTaskResult.objects.filter(task_path=PUMP_TASK, status="READY").filter(
        Q(run_after__lte=at) | Q(run_after=get_date_max())
    )
    if not pending.exists():
        pump_outbox_task.using(run_after=at).enqueue()


def queue_message(
    *,
    customer_id: int,
    template_id: int,
    channel: str,
    purpose: str = Purpose.MARKETING,
    source: str,
    dedupe_key: str,
    by: Actor,
) -> QueueOutcome:
    """Queue one message to a customer (the worker sends it), or record why it is skipped.

    Checks consent, suppression, erasure, restriction and the global control group now (the
    send checks them again with the caps and quiet hours); transactional messages bypass the
    control group. Idempotent on dedupe_key: a second call returns the first row.
    """
    existing = Message.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return QueueOutcome(existing, created=False)
    template = Template.objects.get(pk=template_id)
    standing = check_eligibility([customer_id], channel, purpose)[customer_id]
    reason = standing.skip_reason
    if not reason and purpose == Purpose.MARKETING and is_in_control_group(customer_id):
        reason = "control_group"
    message = Message(
        source=source,
        dedupe_key=dedupe_key,
        customer_id=customer_id if reason != "erased" else None,
        template=template,
        channel=channel,
        purpose=purpose,
        address=standing.address,
        status=Message.Status.SKIPPED if reason else Message.Status.QUEUED,
        skip_reason=reason,
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:  # the same key queued at the same moment elsewhere
        return QueueOutcome(Message.objects.get(dedupe_key=dedupe_key), created=False)
    if not reason:
        transaction.on_commit(ensure_wakeup)
    return QueueOutcome(message, created=True)


def _claimable(now: datetime) -> Q:
    return Q(status__in=PENDING, next_attempt_at__lte=now) | Q(
        status=Message.Status.SENDING, claimed_until__lt=now
    )


def claim_batch(
    size: int, *, campaign_id: int | None = None, exclude_channels: Iterable[str] = ()
) -> list[Message]:
    """Claim up to ``size`` due messages for this worker; return them."""
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        due = Message.objects.filter(_claimable(now))
        if campaign_id is not None:
            due = due.filter(campaign_id=campaign_id)
        excluded = list(exclude_channels)
        if excluded:
            due = due.exclude(channel__in=excluded)
        due = due.order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:size])
        if not ids:
            return []
        # The condition again in the UPDATE: on SQLite two workers may have read the same rows,
        # and only the first UPDATE (writers take turns) still finds them claimable.
        Message.objects.filter(_claimable(now), id__in=ids).update(
            status=Message.Status.SENDING,
            claim_token=token,
            claimed_until=now + get_lease(),
            attempts=F("attempts") + 1,
        )
    # The address is read again from the identity when sending: not decrypted here. Each
    # template is read once, not joined into every row.
    claimed = list(
        Message.objects.filter(claim_token=token, status=Message.Status.SENDING)
        .defer("address")
        .order_by("id")
    )
    templates = Template.objects.in_bulk({m.template_id for m in claimed})
    for message in claimed:
        message.template = templates[message.template_id]
    return claimed


def _mark(message: Message, **changes: Any) -> None:
    """Write a message's outcome at once (its own commit), if this worker still holds it."""
    changes.setdefault("claimed_until", None)
    Message.objects.filter(pk=message.pk, claim_token=message.claim_token).update(**changes)
    for name, value in changes.items():
        setattr(message, name, value)


def _note_campaign_error(messages: Iterable[Message], error: str) -> None:
    """Show the error on the campaigns of these messages (their report and list)."""
    ids = {m.campaign_id for m in messages if m.campaign_id}
    if ids and error:
        Campaign.objects.filter(pk__in=ids).update(last_error=error[:500])


def _retry_later(message: Message, error: str, now: datetime, stats: SendStats) -> None:
    if message.attempts >= MAX_ATTEMPTS:
        _mark(message, status=Message.Status.FAILED, error=error[:500])
        stats.counts["failed"] += 1
    else:
        _mark(
            message,
            status=Message.Status.RETRYING,
            error=error[:500],
            next_attempt_at=now + get_backoff(message.attempts),
        )
        stats.counts["retrying"] += 1


def suppress_address(channel: str, address: str, reason: str) -> None:
    """Put an address on the suppression list (idempotent)."""
    Suppression.objects.get_or_create(
        channel=channel, address_hash=hash_address(channel, address), defaults={"reason": reason}
    )


def _record_result(message: Message, address: str, result: SendResult, stats: SendStats) -> None:
    now = timezone.now()
    if result.is_sent:
        _mark(
            message,
            status=Message.Status.SENT,
            sent_at=now,
            provider_id=result.provider_id[:200],
            error="",
        )
        stats.counts["sent"] += 1
    elif result.status == "retry":
        _retry_later(message, result.error, now, stats)
        _note_campaign_error([message], result.error)
    else:
        if result.hard_bounce and address:
            suppress_address(message.channel, address, result.error[:200] or "hard bounce")
        _mark(message, status=Message.Status.FAILED, error=result.error[:500])
        stats.counts["failed"] += 1


def _count_recent(
    customer_ids: list[int], now: datetime
) -> tuple[Counter[tuple[int, str]], Counter[tuple[int, str]]]:
    """Return marketing messages sent per (customer, channel) today and in the last 7 days.

    (customer, "") holds the customer's count over all channels.
    """
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    today: Counter[tuple[int, str]] = Counter()
    week: Counter[tuple[int, str]] = Counter()
    rows = Message.objects.filter(
        customer_id__in=customer_ids,
        purpose=Purpose.MARKETING,
        status=Message.Status.SENT,
        sent_at__gte=now - timedelta(days=7),
    ).values_list("customer_id", "channel", "sent_at")
    for customer_id, channel, sent_at in rows:
        _count_send(customer_id, channel, week)
        if sent_at is not None and sent_at >= day_start:
            _count_send(customer_id, channel, today)
    return today, week


def _count_send(customer_id: int, channel: str, counts: Counter[tuple[int, str]]) -> None:
    counts[(customer_id, channel)] += 1
    counts[(customer_id, "")] += 1


def _is_capped(
    customer_id: int, channel: str, today: Counter[tuple[int, str]], week: Counter[tuple[int, str]]
) -> bool:
    caps = get_caps()
    checks = [
        (caps.channel_day, today[(customer_id, channel)]),
        (caps.channel_week, week[(customer_id, channel)]),
        (caps.day, today[(customer_id, "")]),
        (caps.week, week[(customer_id, "")]),
    ]
    return any(cap and count >= cap for cap, count in checks)


def _build(
    message: Message,
    address: str,
    language: str,
    context: dict[str, Any],
    *,
    track: bool = False,
) -> OutgoingMessage:
    subject_source, body_source = message.template.get_content(language)
    unsubscribe = ""
    if message.purpose == Purpose.MARKETING and message.customer_id:
        unsubscribe = make_unsubscribe_url(message.customer_id, message.channel, message.source)
    context = {**context, "unsubscribe_url": unsubscribe}
    subject = content.render(subject_source, context, escape=False) if subject_source else ""
    is_email = message.channel == "email"
    is_webhook = message.channel == "webhook"
    if is_email and content.is_html(body_source):  # prepared once per template shape
        document, text = render_email_body(body_source, context)
        if track and unsubscribe:  # consented marketing only; the text part keeps plain links
            keep = _unsubscribe_link_parts(settings.KEQUN_PUBLIC_URL)[0]
            document = tracking.add_tracking(document, message.pk, keep=[keep])
        return OutgoingMessage(
            key=str(message.pk),
            to=address,
            subject=subject,
            html=document,
            text=text,
            html_ready=True,
            template_code=message.template.template_code,
            unsubscribe_url=unsubscribe,
            headers={"X-Kequn-Message": str(message.pk)},
        )
    body = content.render(body_source, context)
    return OutgoingMessage(
        key=str(message.pk),
        # A webhook goes to the receiver URL its template names (template code).
        to=message.template.template_code if is_webhook else address,
        subject=subject,
        html=body if is_email else "",
        text="" if is_email else body,
        template_code="" if is_webhook else message.template.template_code,
        params={k: str(v) for k, v in context.items() if isinstance(v, str | int | float)},
        unsubscribe_url=unsubscribe,
        headers={"X-Kequn-Message": str(message.pk)},
        payload={
            "message": message.pk,
            "source": message.source,
            "customer_id": message.customer_id,
            "subject": subject,
            "text": body,
        }
        if is_webhook
        else None,
    )


class _Channels:
    """The senders opened during one pass, closed at its end."""

    def __init__(self) -> None:
        self.open: dict[str, Channel] = {}

    def get(self, kind: str) -> Channel:
        if kind not in self.open:
            self.open[kind] = get_channel(kind)
        return self.open[kind]

    def close(self) -> None:
        for channel in self.open.values():
            try:
                channel.close()
            except Exception:  # closing a broken connection must not hide the pass's result
                logger.warning("closing the %s channel failed", channel.kind, exc_info=True)


def _mark_all(messages: list[Message], **changes: Any) -> None:
    """Write one outcome for many messages of one claim in a single statement."""
    if not messages:
        return
    changes.setdefault("claimed_until", None)
    Message.objects.filter(
        pk__in=[m.pk for m in messages], claim_token=messages[0].claim_token
    ).update(**changes)
    for message in messages:
        for name, value in changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(message, name, value)


def _id_pattern(group: list[tuple[Message, SendResult]]) -> tuple[str, str] | None:
    """Return (head, tail) when every provider id is head + row id + tail (email's <id@domain>)."""
    first, result = group[0]
    head, found, tail = result.provider_id.partition(str(first.pk))
    fits = found and len(result.provider_id) <= 200
    if fits and all(r.provider_id == f"{head}{m.pk}{tail}" for m, r in group):
        return head, tail
    return None


def _mark_sent(pairs: list[tuple[Message, SendResult]]) -> None:
    """Mark messages the channel accepted as sent, with each one's provider id, in one statement.

    This runs once per group commit, on the hot path: email's provider ids (the row id in
    fixed text) go as one SQL concatenation in a hand-written UPDATE, which costs a fraction
    of building the ORM's; other ids as a CASE per message.
    """
    now = timezone.now()
    by_token: dict[str, list[tuple[Message, SendResult]]] = defaultdict(list)
    for message, result in pairs:
        by_token[message.claim_token].append((message, result))
    for token, group in by_token.items():
        ids = [m.pk for m, _ in group]
        pattern = _id_pattern(group)
        if pattern is not None:
            table = connection.ops.quote_name(Message._meta.db_table)
            marks = ", ".join(["%s"] * len(ids))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET status = %s, sent_at = %s, "  # noqa: S608 -- names from model metadata, values bound
                    "provider_id = %s || CAST(id AS VARCHAR(20)) || %s, error = '', "
                    f"claimed_until = NULL WHERE claim_token = %s AND id IN ({marks})",
                    [
                        Message.Status.SENT,
                        connection.ops.adapt_datetimefield_value(now),
                        *pattern,
                        token,
                        *ids,
                    ],
                )
            continue
        Message.objects.filter(pk__in=ids, claim_token=token).update(
            status=Message.Status.SENT,
            sent_at=now,
            provider_id=Case(
                *[When(pk=m.pk, then=Value(r.provider_id[:200])) for m, r in group],
                default=Value(""),
                output_field=CharField(),
            ),
            error="",
            claimed_until=None,
        )
    for message, result in pairs:
        message.status = Message.Status.SENT
        message.sent_at = now
        message.provider_id = result.provider_id[:200]
        message.error = ""
        message.claimed_until = None


class _Recorder:
    """Record outcomes in this thread while another one sends, each before its connection goes on.

    The sending threads hand over each result and wait; this thread writes whatever has
    arrived in one statement (group commit) and lets them go on. So a killed worker leaves
    at most one accepted, unrecorded message per connection, as with one commit per message,
    without paying a commit per message.
    """

    _DONE = object()

    def __init__(self, write: Callable[[list[tuple[int, SendResult]]], None]) -> None:
        self.write = write
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.recorded: set[int] = set()
        self.failure: BaseException | None = None

    def post(self, index: int, result: SendResult) -> None:
        """Hand over one result (from a sending thread); return once it is written."""
        written = threading.Event()
        self.inbox.put((index, result, written))
        written.wait()
        if self.failure is not None:  # stop sending what could not be recorded
            raise RuntimeError(f"recording a sent message failed: {self.failure}")

    def run(self, send: Callable[[Callable[[int, SendResult], None]], list[SendResult]]) -> Any:
        """Run ``send(post)`` in a thread, writing results here; return its results or exception."""
        outcome: list[Any] = [None]

        def sender() -> None:
            try:
                outcome[0] = send(self.post)
            except BaseException as exc:  # handed to the recording thread, which decides
                outcome[0] = exc
            finally:
                self.inbox.put(self._DONE)

        thread = threading.Thread(target=sender, name="kequn-send", daemon=True)
        thread.start()
        finished = False
        while not finished:
            items = [self.inbox.get()]
            while True:
                try:
                    items.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            finished = any(item is self._DONE for item in items)
            posted = [item for item in items if item is not self._DONE]
            if not posted:
                continue
            try:
                if self.failure is None:
                    self.write([(index, result) for index, result, _ in posted])
                    self.recorded.update(index for index, _, _ in posted)
            except Exception as exc:  # the database went away: the senders stop
                self.failure = exc
            finally:
                for _, _, written in posted:
                    written.set()
        thread.join()
        if self.failure is not None:
            raise self.failure
        return outcome[0]


def _send_each(channel: Channel) -> Callable[..., list[SendResult]]:
    """Return a batch sender calling on_result per message, for channels without the hook."""
    if isinstance(channel, EmailChannel):
        return channel.send_batch

    def send(
        messages: list[OutgoingMessage], *, on_result: Callable[[int, SendResult], None]
    ) -> list[SendResult]:
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            try:
                result = channel.send_batch([message])[0]
            except ChannelUnavailableError:
                if not results:
                    raise
                break  # the rest is reported unsent: retried later
            results.append(result)
            on_result(index, result)
        return results

    return send


def _send_group(
    messages: list[Message],
    channel_kind: str,
    purpose: str,
    channels: _Channels,
    stats: SendStats,
    down: set[str],
    progress: Callable[[int], None] | None,
) -> None:
    """Check, render and send one channel's and purpose's messages of a claimed batch."""
    now = timezone.now()
    is_marketing = purpose == Purpose.MARKETING
    opening = end_of_quiet_hours(now) if is_marketing else None
    if opening is not None:  # quiet hours: held, sent when the window opens
        # A hold is not an attempt: the retry limit stays whole.
        _mark_all(
            messages,
            status=Message.Status.HELD,
            next_attempt_at=opening,
            attempts=Greatest(F("attempts") - 1, Value(0)),
        )
        stats.counts["held"] += len(messages)
        return
    try:
        channel = channels.get(channel_kind)
    except (ChannelNotConfiguredError, ValueError) as exc:
        for message in messages:
            _retry_later(message, str(exc), now, stats)
        _note_campaign_error(messages, str(exc))
        stats.errors.append(str(exc))
        down.add(channel_kind)
        return
    ids = [m.customer_id for m in messages if m.customer_id]
    standing = check_eligibility(ids, channel_kind, purpose)
    today, week = _count_recent(ids, now) if is_marketing else (Counter(), Counter())
    tracked = get_tracking_consented(ids, channel_kind) if is_marketing else set()
    fields: set[str] = set()
    for template in {m.template for m in messages}:
        for language in content.LANGUAGES:
            for source in template.get_content(language):
                fields |= content.used_fields(source)
    contexts = content.build_merge_contexts(ids, fields=fields)
    skipped: dict[str, list[Message]] = defaultdict(list)
    sending: list[Message] = []
    addresses: list[str] = []
    outgoing: list[OutgoingMessage] = []
    for message in messages:
        customer_id = message.customer_id or 0  # 0: erased, no customer row any more
        reason = standing[customer_id].skip_reason if customer_id else "erased"
        if not reason and is_marketing and _is_capped(customer_id, channel_kind, today, week):
            reason = "frequency_cap"
        if reason:
            skipped[reason].append(message)
            continue
        info = standing[customer_id]
        try:
            built = _build(
                message,
                info.address,
                info.language,
                contexts.get(customer_id, {}),
                track=customer_id in tracked,
            )
        except Exception as exc:  # a template problem is this message's failure, not the pass's
            _mark(
                message, status=Message.Status.FAILED, skip_reason="", error=f"render: {exc}"[:500]
            )
            stats.counts["failed"] += 1
            continue
        if is_marketing:  # counted now: a customer twice in one batch meets the cap too
            _count_send(customer_id, channel_kind, today)
            _count_send(customer_id, channel_kind, week)
        sending.append(message)
        addresses.append(info.address)
        outgoing.append(built)
    for reason, group in skipped.items():
        _mark_all(group, status=Message.Status.SKIPPED, skip_reason=reason)
        stats.counts["skipped"] += len(group)
    if progress and skipped:
        progress(sum(len(group) for group in skipped.values()))
    if not outgoing:
        return

    def write(done: list[tuple[int, SendResult]]) -> None:
        accepted = [(sending[i], result) for i, result in done if result.is_sent]
        _mark_sent(accepted)
        stats.counts["sent"] += len(accepted)
        for i, result in done:
            if not result.is_sent:
                _record_result(sending[i], addresses[i], result, stats)
        if progress:
            progress(len(done))

    recorder = _Recorder(write)
    send = _send_each(channel)
    outcome = recorder.run(lambda post: send(outgoing, on_result=post))
    left = [i for i in range(len(sending)) if i not in recorder.recorded]
    if not left:
        return
    if isinstance(outcome, ChannelUnavailableError) or not isinstance(outcome, list):
        error = str(outcome) if isinstance(outcome, BaseException) else "no result"
        for i in left:
            _retry_later(sending[i], error, now, stats)
        _note_campaign_error([sending[i] for i in left], error)
        stats.errors.append(error)
        if isinstance(outcome, ChannelUnavailableError):
            down.add(channel_kind)
        elif isinstance(outcome, BaseException):
            raise outcome
        return
    unsent = SendResult(key="", status="retry", error=f"{channel_kind}: not sent; retry later")
    write([(i, outcome[i] if i < len(outcome) else unsent) for i in left])


def send_due_messages(
    *,
    campaign_id: int | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SendStats:
    """Send every due message (of one campaign if given); return the counts by outcome.

    Without a batch_size, each claim is sized to take about a quarter of the lease at the
    rate the last one went (so a slow server never outlives a claim, a fast one gets whole
    batches). A channel that is down (or has no settings) is left for a later pass: its
    messages wait as "retrying" with the error and a growing delay.
    """
    stats = SendStats()
    channels = _Channels()
    down: set[str] = set()
    handled = 0
    size = batch_size or FIRST_BATCH
    try:
        while limit is None or handled < limit:
            started = time.monotonic()
            batch = claim_batch(size, campaign_id=campaign_id, exclude_channels=down)
            if not batch:
                break
            handled += len(batch)
            groups: dict[tuple[str, str], list[Message]] = defaultdict(list)
            for message in batch:
                groups[(message.channel, message.purpose)].append(message)
            for (kind, purpose), messages in groups.items():
                if kind in down:
                    for message in messages:
                        _retry_later(
                            message, stats.errors[-1] if stats.errors else "", timezone.now(), stats
                        )
                    continue
                _send_group(messages, kind, purpose, channels, stats, down, progress)
            if batch_size is None:
                rate = len(batch) / max(time.monotonic() - started, 1e-3)
                size = max(MIN_BATCH, min(MAX_BATCH, int(rate * get_lease().total_seconds() / 4)))
    finally:
        channels.close()
    return stats


def get_next_due() -> datetime | None:
    """Return when the earliest waiting message is due (a lapsed claim included)."""
    first = (
        Message.objects.filter(status__in=PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    claim = (
        Message.objects.filter(status=Message.Status.SENDING)
        .order_by("claimed_until")
        .values_list("claimed_until", flat=True)
        .first()
    )
    moments = [m for m in (first, claim) if m is not None]
    return min(moments) if moments else None


ENGAGEMENT_FIELDS = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}


def record_message_event(
    *, provider_id: str = "", message_id: int | None = None, kind: str, at: datetime | None = None
) -> bool:
    """Record a delivery, open or click a channel reported for a sent message (the first counts).

    The message is found by its id or by the provider's id; returns whether a row changed.
    A report about an unknown message changes nothing (providers resend their reports).
    """
    if kind not in ENGAGEMENT_FIELDS:
        raise ValueError(
            f"unknown message event {kind!r}: use one of {', '.join(ENGAGEMENT_FIELDS)}"
        )
    if message_id is None and not provider_id:
        raise ValueError("name the message by its id or by the provider's id")
    field = ENGAGEMENT_FIELDS[kind]
    rows = Message.objects.filter(status=Message.Status.SENT, **{f"{field}__isnull": True})
    rows = (
        rows.filter(pk=message_id)
        if message_id is not None
        else rows.filter(provider_id=provider_id)
    )
    return rows.update(**{field: at or timezone.now()}) > 0
