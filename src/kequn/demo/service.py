"""Demo service desk: a China business calendar, queues, SLA policies and a few hundred tickets.

Tickets go through the real services (deadlines on the calendar, replies, pauses,
resolutions at their historic times), so the SLA report and the 360 pages are filled.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from kequn.customers.models import Customer
from kequn.security.actors import Actor
from kequn.service import services
from kequn.service.models import BusinessCalendar, Queue, SlaPolicy, Ticket

OFFICE = {
    day: [["09:00", "12:00"], ["13:30", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}
STORE = {day: [["10:00", "22:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
SUBJECTS = [
    ("complaint", "high", "快递延误一周还没到", "订单显示已发货，但物流一周没有更新。"),
    ("complaint", "urgent", "新手机开机就黑屏", "昨天在门店买的手机，今天开机黑屏，要求退换。"),
    ("return", "normal", "耳机右耳没有声音", "使用两周后右耳没有声音，申请保修。"),
    ("return", "normal", "申请七天无理由退货", "尺寸不合适，想退货，包装完好。"),
    ("inquiry", "normal", "发票怎么开", "企业采购需要开增值税专用发票。"),
    ("inquiry", "low", "会员积分什么时候到账", "上周的订单积分还没到账。"),
    ("suggestion", "low", "希望门店周末延长营业时间", "周末晚上九点就关门了，希望晚一点。"),
    (
        "inquiry",
        "normal",
        "Warranty for my laptop",
        "How long is the warranty on the laptop I bought?",
    ),
]
REPLIES = [
    "您好，已收到您的问题，正在为您处理。",
    "请提供订单号和照片，我们尽快处理。",
    "已为您安排换新，请留意物流。",
]


def create_service_setup(*, by: Actor) -> tuple[BusinessCalendar, list[Queue]]:
    """Create the demo calendars, queues and SLA policies (idempotent)."""
    office, _ = BusinessCalendar.objects.get_or_create(
        name="总部客服（中国工作日）", defaults={"country": "CN", "hours": OFFICE}
    )
    store, _ = BusinessCalendar.objects.get_or_create(
        name="门店（每天营业）", defaults={"country": "", "hours": STORE}
    )
    after_sales, _ = Queue.objects.get_or_create(
        name="售后", defaults={"email_address": "service@demo.kequn.local"}
    )
    complaints, _ = Queue.objects.get_or_create(name="投诉升级")
    policies = [
        ("紧急投诉", 10, office, ["urgent", "high"], ["complaint"], 30, 60, 8 * 60, complaints),
        ("门店售后", 20, store, [], ["return"], 120, 240, 2 * 12 * 60, complaints),
        ("标准", 100, office, [], [], 4 * 60, 8 * 60, 3 * 8 * 60, None),
    ]
    for name, position, calendar, priorities, types, first, following, resolution, up in policies:
        SlaPolicy.objects.get_or_create(
            name=name,
            defaults={
                "position": position,
                "calendar": calendar,
                "priorities": priorities,
                "types": types,
                "first_response_minutes": first,
                "next_response_minutes": following,
                "resolution_minutes": resolution,
                "warn_minutes": 30,
                "escalate_to": up,
            },
        )
    return office, [after_sales, complaints]


def create_demo_tickets(*, seed: int = 42, by: Actor, limit: int = 300) -> int:
    """Create demo tickets for about one customer in fifty (at most `limit`); 0 if some exist."""
    if Ticket.objects.exists():
        return 0
    _office, queues = create_service_setup(by=by)
    ids = list(Customer.objects.filter(merged_into__isnull=True).values_list("id", flat=True))
    if not ids:
        return 0
    rng = random.Random(seed)
    chosen = rng.sample(ids, min(limit, max(1, len(ids) // 50)))
    now = timezone.now()
    made = 0
    for customer_id in chosen:
        kind, priority, subject, body = rng.choice(SUBJECTS)
        opened = now - dt.timedelta(days=rng.uniform(0.05, 120), minutes=rng.randint(0, 600))
        with transaction.atomic():
            ticket = services.open_ticket(
                customer_id=customer_id, subject=subject, body=body, type=kind,
                priority=priority, source=rng.choice(["phone", "store", "email", "web"]),
                opened_at=opened, queue=queues[0], by=by,
            )  # fmt: skip
            age = now - opened
            # Older tickets are mostly answered and resolved; some answers are late.
            if age > dt.timedelta(hours=2) and rng.random() < 0.9:
                first = opened + dt.timedelta(minutes=rng.choice([10, 25, 45, 90, 200, 600]))
                if first < now:
                    waiting = rng.random() < 0.2
                    services.add_reply(
                        ticket=ticket, body=rng.choice(REPLIES), waiting=waiting, by=by, at=first
                    )
                    done = first + dt.timedelta(hours=rng.choice([2, 6, 20, 30, 70]))
                    if waiting and done < now:
                        services.add_customer_message(
                            ticket=ticket,
                            body="好的，谢谢。",
                            by=by,
                            at=first + dt.timedelta(hours=1),
                        )
                    if age > dt.timedelta(days=3) and done < now and rng.random() < 0.85:
                        services.change_status(ticket=ticket, status="resolved", by=by, at=done)
                        if rng.random() < 0.7:
                            services.change_status(
                                ticket=ticket, status="closed", by=by,
                                at=done + dt.timedelta(days=2),
                            )  # fmt: skip
        made += 1
    services.check_slas(by=by)
    return made
