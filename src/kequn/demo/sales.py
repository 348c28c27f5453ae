"""The demo's B2B slice: dealers and enterprise buyers of the phone brand, with their sales.

Three pipelines (new business, renewal, channel), a team of reps under a manager, company
accounts with contacts, deals in every stage (some won and lost, with a backdated history),
activities and tasks, a lead pool and quotas. Deterministic for a seed; skipped when the
pipelines already exist.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from kequn.commerce.models import Product
from kequn.customers.models import Customer
from kequn.sales import services
from kequn.sales.models import (
    AccountProfile,
    Deal,
    DealStageChange,
    Pipeline,
    Quota,
    Stage,
    Team,
)
from kequn.sales.selectors import add_month, month_start
from kequn.security.actors import Actor
from kequn.security.roles import SALES

PIPELINES = ("新业务 New business", "续约 Renewal", "渠道 Channel")
CITIES = [
    ("广东", "深圳"),
    ("广东", "广州"),
    ("上海", "上海"),
    ("北京", "北京"),
    ("浙江", "杭州"),
    ("四川", "成都"),
    ("湖北", "武汉"),
    ("江苏", "南京"),
]
KINDS = [
    "数码经销有限公司",
    "通讯器材有限公司",
    "科技股份有限公司",
    "信息技术有限公司",
    "集团有限公司",
]
WORDS = [
    "华强",
    "新宇",
    "恒通",
    "鼎盛",
    "远航",
    "博瑞",
    "星河",
    "联创",
    "汇智",
    "天成",
    "海纳",
    "金桥",
    "启明",
    "中拓",
    "瑞丰",
    "宏图",
]
CONTACT_NAMES = ["王磊", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "黄勇", "周婷", "吴昊"]
SOURCES = ["展会", "官网咨询", "老客户推荐", "电话营销", "渠道伙伴"]
LOST_REASONS = ["价格太高", "选择了竞品", "预算取消", "需求延后"]


def _rep(username: str, group: Group, email: str) -> Any:
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"is_staff": True, "email": email}
    )
    if created:
        user.set_unusable_password()  # demo reps log in only after an admin sets a password
        user.save()
    user.groups.add(group)
    return user


def create_b2b_slice(*, by: Actor, seed: int = 42, accounts: int = 60) -> str:
    """Create the B2B demo data; return a one-line summary (or why nothing was done)."""
    if Pipeline.objects.filter(name=PIPELINES[0]).exists():
        return "Sales demo data is already loaded; keeping it."
    rng = random.Random(seed)
    group = Group.objects.get(name=SALES)
    now = timezone.now()
    today = timezone.localdate()
    with transaction.atomic():
        manager = _rep("sales-manager", group, "manager@example.com")
        reps = [_rep(f"rep-{name}", group, f"{name}@example.com") for name in ("lin", "zhou", "he")]
        team, _created = Team.objects.get_or_create(
            name="华南大客户部", defaults={"manager": manager}
        )
        team.members.add(*reps)
        pipelines = [
            services.create_pipeline(name=name, by=by, position=i)
            for i, name in enumerate(PIPELINES)
        ]
        products = list(Product.objects.order_by("id")[:20])
        deals = activities = 0
        for n in range(accounts):
            province, city = CITIES[n % len(CITIES)]
            owner = reps[n % len(reps)]
            in_pool = n % 10 == 9
            name = f"{city}{WORDS[n % len(WORDS)]}{KINDS[n % len(KINDS)]}"
            if n >= len(WORDS) * len(KINDS):
                name = f"{city}{WORDS[n % len(WORDS)]}{n}号{KINDS[n % len(KINDS)]}"
            account = services.create_account(
                services.AccountInput(
                    name=name,
                    credit_code=services.make_credit_code(f"914403{n:06d}MA5D"),
                    domain=f"b2b{n}.example.cn",
                    industry="电子产品零售" if n % 2 else "企业采购",
                    province=province,
                    city=city,
                    team_id=team.pk,
                    in_pool=in_pool,
                    source_channel="demo",
                    external_ref=f"demo-b2b-{n}",
                ),
                by=by,
                owner=None if in_pool else owner,
                confirm=True,
                source="demo",
            )
            for k in range(2):
                services.create_contact(
                    account,
                    by=by,
                    name=CONTACT_NAMES[(n + k) % len(CONTACT_NAMES)],
                    phone=f"139{n:04d}{k:04d}",
                    title="采购总监" if k == 0 else "门店经理",
                    role="decision" if k == 0 else "user",
                    is_primary=k == 0,
                )
            if in_pool:
                continue
            for d in range(rng.randint(1, 3)):
                pipeline = pipelines[(n + d) % len(pipelines)]
                stages = list(pipeline.stages.order_by("position"))
                open_stages = [s for s in stages if not s.is_closed]
                amount = Decimal(rng.randrange(20, 800) * 1000)
                # Half the deals have closed, and small orders are won more often than big
                # ones: enough closed deals, with a signal, for the win model to train on.
                won_share = 0.4 if amount < 300_000 else 0.2
                roll = rng.random()
                final = (
                    next(s for s in stages if s.is_won)
                    if roll < won_share
                    else next(s for s in stages if s.is_lost)
                    if roll < 0.5
                    else rng.choice(open_stages)
                )
                lines: list[tuple[int, int, Decimal | None]] = []
                if products:
                    product = products[(n + d) % len(products)]
                    quantity = max(int(amount / max(product.price, Decimal(1))), 1)
                    lines = [(product.pk, min(quantity, 5000), None)]
                deal = services.create_deal(
                    services.DealInput(
                        name=f"{account.name[:12]} {'换机' if d % 2 else '铺货'}",
                        account_id=account.pk,
                        stage_id=open_stages[0].pk,
                        close_date=today + timedelta(days=rng.randint(5, 120)),
                        amount=amount,
                        owner_id=owner.pk,
                        products=lines,
                        source=rng.choice(SOURCES),
                    ),
                    by=by,
                )
                created = now - timedelta(days=rng.randint(30, 200))
                # The history starts when the deal was first entered, months ago.
                Deal.objects.filter(pk=deal.pk).update(created_at=created, stage_entered_at=created)
                DealStageChange.objects.filter(deal=deal).update(changed_at=created)
                deal.refresh_from_db()
                moment = created
                path = (
                    [s for s in open_stages if s.position <= final.position]
                    if not final.is_closed
                    else open_stages[: rng.randint(1, len(open_stages))]
                )
                for stage in [*path[1:], *([final] if final.is_closed else [])]:
                    moment = min(moment + timedelta(days=rng.randint(3, 20)), now)
                    services.move_deal(
                        deal,
                        stage,
                        by=by,
                        at=moment,
                        lost_reason=rng.choice(LOST_REASONS) if stage.is_lost else None,
                        on=timezone.localdate(moment) if stage.is_closed else today,
                        close_date=timezone.localdate(moment) if stage.is_closed else None,
                    )
                deals += 1
                for a in range(rng.randint(1, 4)):
                    kind = ["call", "meeting", "visit", "email", "note"][(n + a) % 5]
                    services.log_activity(
                        services.ActivityInput(
                            kind=kind,
                            subject={
                                "call": "电话跟进",
                                "meeting": "方案会议",
                                "visit": "门店拜访",
                                "email": "发送报价单",
                                "note": "客户需求备注",
                            }[kind],
                            occurred_at=now - timedelta(days=rng.randint(0, 60)),
                            location=f"{city}{WORDS[n % len(WORDS)]}门店"
                            if kind == "visit"
                            else "",
                            account_id=account.pk,
                            deal_id=deal.pk,
                        ),
                        by=by,
                        owner=owner,
                    )
                    activities += 1
            services.create_task(
                by=by,
                owner=owner,
                title=f"回访 {account.name[:16]}",
                due_at=now + timedelta(days=rng.randint(-5, 20)),
                remind_at=None,
                account_id=account.pk,
            )
        # Some accounts have been quiet for weeks: the nightly return will warn their owners.
        quiet = AccountProfile.objects.filter(in_pool=False, customer__source_channel="demo")[:4]
        AccountProfile.objects.filter(pk__in=[p.pk for p in quiet]).update(
            last_activity_at=now - timedelta(days=26)
        )
        first = month_start(today)
        for i in range(-3, 4):
            month = add_month(first, i)
            for rep in reps:
                Quota.objects.get_or_create(
                    owner=rep, month=month, defaults={"amount": Decimal(600_000)}
                )
    companies = Customer.objects.filter(kind=Customer.Kind.COMPANY, source_channel="demo").count()
    n_stages = Stage.objects.filter(pipeline__in=pipelines).count()
    return (
        f"Sales: {companies} company accounts, {len(pipelines)} pipelines ({n_stages} stages), "
        f"{deals} deals, {activities} activities."
    )
