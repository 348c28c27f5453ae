"""Evaluate the ticket type and queue suggestions on a held-out time slice, two data sets.

Run: python benchmarks/feedback_text_eval.py [--tickets 6000] [--seeds 3] [--smoke]
1. Demo data: a scratch SQLite database gets the demo service desk (kequn.demo.service: the
   real ticket services), then `kequn survey evaluate`'s evaluation (the latest 20 % of closed
   tickets held out, by opening time) is printed. The demo draws from eight fixed texts and
   one queue, so its figures say only that the pipeline works.
2. A generated desk shaped differently: imbalanced types (inquiry 55 %, complaint 25 %,
   return 14 %, suggestion 6 %), five queues decided by channel and product line, Chinese and
   English (30 %), texts composed from products, problems and phrasings, 8 % of labels mis-set
   by agents, and drift: products and phrasings that appear only in the later months, so the
   held-out slice carries words the training slice never saw.
Each line gives macro-F1 and accuracy next to the majority class's (the baseline) and the
mean over --seeds seeds. Exit 1 when a model on the generated desk does not beat the baseline.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta

from _verdict import Verdict, set_smoke_tag

TYPES = {"inquiry": 0.55, "complaint": 0.25, "return": 0.14, "suggestion": 0.06}
# Product lines: (Chinese, English, line); the last two of each line only appear late (drift).
PRODUCTS = {
    "phone": [("手机", "phone"), ("平板", "tablet"), ("智能手表", "smartwatch"), ("折叠屏手机", "foldable")],
    "audio": [("耳机", "earbuds"), ("音箱", "speaker"), ("降噪耳机", "ANC headphones"), ("车载音响", "car audio")],
    "home": [("扫地机", "robot vacuum"), ("空气净化器", "air purifier"), ("洗碗机", "dishwasher"), ("咖啡机", "coffee maker")],
}  # fmt: skip
PHRASES = {
    "inquiry": [
        ("请问{p}支持{x}吗", "Does the {p} support {x}?"),
        ("{p}的保修期是多久", "How long is the warranty on the {p}?"),
        ("想了解{p}的价格和库存", "Is the {p} in stock and what does it cost?"),
        ("{p}怎么开发票", "How do I get an invoice for the {p}?"),
        ("会员买{p}有没有优惠", "Is there a member discount on the {p}?"),
        ("{p}什么时候到货", "When will the {p} be back?"),
    ],
    "complaint": [
        ("{p}收到就坏了，太失望", "The {p} arrived broken, very disappointed"),
        ("客服一直不回复，{p}的问题没人管", "Nobody answers about my {p}, terrible service"),
        ("{p}快递延误了两周", "The {p} delivery is two weeks late"),
        ("门店店员态度很差，买{p}被怠慢", "Rude staff in the store when I bought the {p}"),
        ("{p}用了三天就{x}，质量太差", "The {p} started to {x} after three days, poor quality"),
    ],
    "return": [
        ("{p}想申请退货", "I want to return the {p}"),
        ("{p}出现{x}，申请保修维修", "The {p} has {x}, please repair it under warranty"),
        ("七天无理由退{p}", "Seven-day return for the {p}, no reason"),
        ("{p}换货，尺寸不对", "Exchange the {p}, wrong size"),
    ],
    "suggestion": [
        ("建议{p}增加{x}功能", "Please add {x} to the {p}"),
        ("希望门店周末延长营业", "Stores should open longer on weekends"),
        ("App 里找{p}太难，建议改版", "Finding the {p} in the app is hard, please redesign"),
    ],
}
# Late phrasings (drift): used only in the last third of the period.
LATE = {
    "inquiry": [("{p}能不能以旧换新", "Can I trade in my old {p}?")],
    "complaint": [("{p}直播间说的和实物不一样", "The {p} is not what the livestream showed")],
    "return": [("{p}屏幕{x}，要寄修", "The {p} screen has {x}, I need a mail-in repair")],
    "suggestion": [("希望{p}出更多颜色", "Please make the {p} in more colours")],
}
FILLERS = ["蓝牙", "快充", "黑屏", "漏水", "杂音", "死机", "NFC", "防水", "发热", "断连"]
CHANNELS = ["online", "store", "enterprise"]


def queue_of(rng: random.Random, kind: str, line: str, channel: str) -> str:
    """Route like a real desk: enterprise and returns first, then by product line and channel."""
    if channel == "enterprise":
        return "企业客户"
    if kind == "return":
        return "售后维修"
    if line == "home":
        return "家电"
    return "门店" if channel == "store" else "线上"


def generate_desk(n: int, seed: int) -> list[dict]:
    """Return n closed tickets (text, type, queue, opened_at) of a differently shaped desk."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    tickets = []
    kinds, weights = zip(*TYPES.items(), strict=True)
    for i in range(n):
        at = start + timedelta(days=365 * i / n, minutes=rng.randint(0, 600))
        late = i > n * 2 / 3
        kind = rng.choices(kinds, weights)[0]
        line = rng.choice(list(PRODUCTS))
        products = PRODUCTS[line] if late else PRODUCTS[line][:2]
        zh, en = rng.choice(products)
        channel = rng.choices(CHANNELS, [0.6, 0.3, 0.1])[0]
        phrases = PHRASES[kind] + (LATE[kind] * 2 if late else [])
        pair = rng.choice(phrases)
        english = rng.random() < 0.3
        text = (pair[1] if english else pair[0]).format(
            p=en if english else zh, x=rng.choice(FILLERS)
        )
        if channel == "store":
            text += " (store visit)" if english else "（门店）"
        elif channel == "enterprise":
            text += " - corporate account" if english else "，公司采购"
        label, queue = kind, queue_of(rng, kind, line, channel)
        if rng.random() < 0.08:  # agents set a wrong type or queue now and then
            label = rng.choice(kinds)
        if rng.random() < 0.08:
            queue = rng.choice(["企业客户", "售后维修", "家电", "门店", "线上"])
        tickets.append({"text": text, "type": label, "queue__name": queue, "opened_at": at})
    return tickets


def line(name: str, ev) -> str:
    return (
        f"  {name:30s} macro-F1 {ev.macro_f1:.3f} vs majority {ev.baseline_macro_f1:.3f}   "
        f"accuracy {ev.accuracy:.3f} vs {ev.baseline_accuracy:.3f} ({ev.majority!r})   "
        f"held out {ev.n_test:,} of {ev.n_train + ev.n_test:,}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=6000, help="size of the generated desk")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--demo-customers", type=int, default=15_000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.tickets, args.seeds, args.demo_customers = 600, 1, 3_000
    verdict = Verdict("feedback_text_eval", smoke=args.smoke)
    verdict.conditions("the latest 20 % by opening time held out; majority class as baseline")
    scratch = tempfile.mkdtemp(prefix="kequn-bench-text-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ.update({"KEQUN_DATA_DIR": scratch, "DJANGO_SETTINGS_MODULE": "kequn.settings"})
    os.environ.pop("KEQUN_DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    from kequn.analytics.feedback_text import evaluate_text_classifier
    from kequn.customers.models import Customer
    from kequn.demo.service import create_demo_tickets
    from kequn.feedback.classify import evaluate_ticket_models, read_closed_tickets
    from kequn.security.actors import system_actor

    call_command("migrate", verbosity=0)
    Customer.objects.bulk_create(
        [Customer(name=f"客户{i}") for i in range(args.demo_customers)], batch_size=2000
    )
    create_demo_tickets(by=system_actor("benchmark"))
    closed = read_closed_tickets()
    print(f"demo desk: {len(closed)} closed tickets")
    demo = evaluate_ticket_models(closed)
    for target, ev in demo.items():
        print(line(f"demo, ticket {target}", ev))
    if "queue" not in demo:
        print("  demo, ticket queue: not evaluated (the demo puts every ticket in one queue)")
    if not args.smoke:  # the smoke desk has fewer closed tickets than a model needs
        verdict.check("the demo's type model is evaluated", "type" in demo, f"{sorted(demo)}")
    print(f"generated desk: {args.tickets:,} tickets, {args.seeds} seed(s)")
    for target in ("type", "queue__name"):
        results = []
        for seed in range(args.seeds):
            desk = generate_desk(args.tickets, seed)
            ev = evaluate_text_classifier(
                [t["text"] for t in desk], [t[target] for t in desk], [t["opened_at"] for t in desk]
            )
            results.append(ev)
            print(line(f"generated, {target.split('__')[0]}, seed {seed}", ev))
        f1 = statistics.mean(e.macro_f1 for e in results)
        base = statistics.mean(e.baseline_macro_f1 for e in results)
        acc = statistics.mean(e.accuracy for e in results)
        base_acc = statistics.mean(e.baseline_accuracy for e in results)
        name = target.split("__")[0]
        print(
            f"  generated, {name}, mean: macro-F1 {f1:.3f} vs {base:.3f}, "
            f"accuracy {acc:.3f} vs {base_acc:.3f}"
        )
        verdict.target(
            f"generated desk: the {name} model beats the majority class",
            all(e.beats_baseline for e in results),
            f"macro-F1 {f1:.3f} vs {base:.3f}",
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
