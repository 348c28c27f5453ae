"""Demo journeys: a win-back with a fortnight of history, and journeys waiting for new triggers."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from kequn.engage.models import Template
from kequn.engage.services import create_template
from kequn.journeys.models import Journey
from kequn.journeys.services import create_journey, fire_trigger, pause_journey, run_due
from kequn.scoring.models import CustomerScore
from kequn.security.actors import Actor

WIN_BACK = "流失风险挽回"
WIN_BACK_SIZE = 400
WELCOME_TEMPLATE = (
    "旅程 · 首购欢迎",
    "{{ salutation }}，欢迎成为我们的客户",
    '<p>{{ salutation }}，感谢您的首次购买！</p><p><a href="{{ unsubscribe_url }}">退订</a></p>',
)
BIRTHDAY_TEMPLATE = (
    "旅程 · 生日祝福",
    "{{ salutation }}，生日快乐",
    '<p>{{ salutation }}，祝您生日快乐！生日月专享礼遇已为您备好。</p><p><a href="{{ unsubscribe_url }}">退订</a></p>',
)
VIEWED_TEMPLATE = (
    "旅程 · 浏览未购提醒",
    "{{ salutation }}，您看过的商品还在",
    '<p>{{ salutation }}，您最近看过的商品还有库存，需要帮您留一件吗？</p><p><a href="{{ unsubscribe_url }}">退订</a></p>',
)
EMAIL_CONSENT = {
    "match": "all",
    "conditions": [
        {"field": "consent", "channel": "email", "purpose": "marketing", "operator": "is", "value": True}
    ],
}  # fmt: skip


def _template(spec: tuple[str, str, str], *, by: Actor) -> int:
    name, subject, body = spec
    existing = Template.objects.filter(name=name).first()
    if existing is not None:
        return existing.pk
    return create_template(name=name, channel="email", subject_zh=subject, body_zh=body, by=by).pk


def create_demo_journeys(*, by: Actor) -> str:
    """Create the demo journeys (once) and walk the win-back through two weeks; return a line."""
    if Journey.objects.filter(name=WIN_BACK).exists():
        return "Demo journeys are already there; keeping them."
    win_back = create_journey(
        name=WIN_BACK,
        description="生命周期进入“有流失风险”时：打标签，A/B 两种挽回方式，一周后仍未购买则标记挽回失败。",
        trigger_kind="stage_changed",
        trigger_config={"to": "at_risk"},
        goal={"kind": "purchase"},
        steps=[
            {"id": "mark", "kind": "tag", "config": {"tag": "挽回中"}, "next": "ab"},
            {
                "id": "ab",
                "kind": "split",
                "config": {
                    "variants": [
                        {"name": "A 优惠券", "percent": 50, "next": "coupon"},
                        {"name": "B 关怀", "percent": 50, "next": "care"},
                    ]
                },
            },
            {"id": "coupon", "kind": "tag", "config": {"tag": "挽回-优惠券"}, "next": "wait"},
            {"id": "care", "kind": "tag", "config": {"tag": "挽回-关怀"}, "next": "wait"},
            {"id": "wait", "kind": "wait", "config": {"days": 7, "at": "10:00"}, "next": "goal"},
            {"id": "goal", "kind": "goal", "next": "lost"},
            {"id": "lost", "kind": "tag", "config": {"tag": "挽回失败"}},
        ],
        activate=True,
        by=by,
    )
    create_journey(
        name="首购欢迎",
        description="首次购买两天后：同意邮件营销的客户收到欢迎邮件，其余打标签以便线下跟进。",
        trigger_kind="first_purchase",
        steps=[
            {"id": "wait", "kind": "wait", "config": {"days": 2, "at": "10:00"}, "next": "consent"},
            {
                "id": "consent",
                "kind": "branch",
                "config": {"rule": EMAIL_CONSENT, "yes": "mail", "no": "follow"},
            },
            {
                "id": "mail",
                "kind": "send",
                "config": {"template": _template(WELCOME_TEMPLATE, by=by), "channel": "email"},
            },
            {"id": "follow", "kind": "tag", "config": {"tag": "首购待跟进"}},
        ],
        activate=True,
        by=by,
    )
    create_journey(
        name="浏览未购提醒",
        description="浏览商品后一天内没有下单：发一封提醒邮件（下单即达成目标退出）。",
        trigger_kind="event",
        trigger_config={"event": "Product Viewed"},
        reentry=Journey.Reentry.AFTER_DAYS,
        reentry_days=30,
        goal={"kind": "purchase"},
        steps=[
            {"id": "wait", "kind": "wait", "config": {"days": 1}, "next": "mail"},
            {
                "id": "mail",
                "kind": "send",
                "config": {"template": _template(VIEWED_TEMPLATE, by=by), "channel": "email"},
            },
        ],
        activate=True,
        by=by,
    )
    birthday = create_journey(
        name="生日关怀",
        description="生日前三天发送祝福邮件（暂停中：恢复后每天运行）。",
        trigger_kind="birthday",
        trigger_config={"days_before": 3},
        reentry=Journey.Reentry.ALWAYS,
        steps=[
            {
                "id": "mail",
                "kind": "send",
                "config": {"template": _template(BIRTHDAY_TEMPLATE, by=by), "channel": "email"},
            }
        ],
        activate=True,
        by=by,
    )
    pause_journey(birthday, by=by)
    # The win-back's history: customers now at risk entered a fortnight ago and walked on.
    at_risk = list(
        CustomerScore.objects.filter(lifecycle_stage="at_risk")
        .order_by("customer_id")
        .values_list("customer_id", flat=True)[:WIN_BACK_SIZE]
    )
    now = timezone.now()
    start = now - timedelta(days=14)
    entered = fire_trigger(
        kind="stage_changed",
        customer_ids=at_risk,
        payload={"to": "at_risk", "key": "demo"},
        now=start,
        by=by,
    )
    for moment in (start, start + timedelta(days=8), now):
        run_due(now=moment, by=by, limit=5000)
    return f"Created 4 demo journeys; {entered:,} at-risk customers walked the win-back ({win_back.name})."
