"""Compare the win-probability model with the stage baseline on held-out time, per data set.

Usage:  python benchmarks/sales_winmodel.py [--seeds 3] [--deals 1500] [--demo-accounts 60]
Each data set is written into a scratch SQLite database, trained with `kequn sales train`'s
code (kequn.sales.winmodel.train_win_model: the deals closed first train, the 30 % closed
last validate) and its log loss and AUC printed beside the stage-probability baseline's:
- the demo's B2B slice (kequn.demo.sales, its default size and a bigger one);
- generated businesses of three shapes (kequn.sales.dealsets): "dealers" (4 open stages,
  lognormal amounts, follow-up effort seen in steady activities decides), "enterprise"
  (7 stages, heavy-tailed amounts, size, account value and stalling decide, activities come
  in bursts before each move) and "stage-only" (3 stages whose defaults are the true odds).
Checks: the model is used on every dealers and enterprise seed, never on stage-only.
--smoke: one seed of 400 deals per shape and the small demo.
"""

from __future__ import annotations

import argparse
import sys
import time

from _verdict import Verdict, set_smoke_tag
from sales_common import setup_django


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--deals", type=int, default=1500, help="deals per generated set")
    parser.add_argument("--demo-accounts", type=int, nargs="+", default=[60, 400])
    parser.add_argument("--smoke", action="store_true", help="a small run")
    args = parser.parse_args(argv)
    if args.smoke:
        set_smoke_tag()
        args.seeds, args.deals, args.demo_accounts = 1, 400, [60]
    verdict = Verdict("sales_winmodel", smoke=args.smoke)
    setup_django(True)  # always a scratch database: every set starts from nothing
    from django.core.exceptions import ValidationError

    from kequn.customers.models import Customer
    from kequn.demo.sales import create_b2b_slice
    from kequn.sales import dealsets, winmodel
    from kequn.sales.models import Deal, Pipeline, WinModel
    from kequn.security.actors import system_actor

    by = system_actor("benchmark")

    def clear() -> None:
        WinModel.objects.all().delete()
        Deal.objects.all().delete()
        Pipeline.objects.all().delete()
        Customer.objects.all().delete()  # companies and their contacts (a scratch database)

    verdict.conditions(
        f"{args.deals:,} generated deals per set, seeds 1–{args.seeds}; the demo slice at "
        f"{', '.join(str(a) for a in args.demo_accounts)} accounts; SQLite scratch database"
    )
    header = (
        f"{'data set':<22}{'closed':>7}{'won':>6}{'val.':>6}{'model LL':>10}{'base LL':>9}"
        f"{'model AUC':>10}{'base AUC':>9}{'gain±se':>16}  decision"
    )
    print(header)
    print("-" * len(header))

    def run(label: str) -> WinModel | None:
        started = time.perf_counter()
        try:
            model = winmodel.train_win_model(by=by)
        except ValidationError as exc:
            print(f"{label:<22}not trained: {'; '.join(exc.messages)}")
            return None
        m = model.metrics
        closed = m["train_deals"] + m["test_deals"]
        won = Deal.objects.filter(status=Deal.Status.WON).count()
        print(
            f"{label:<22}{closed:>7}{won / closed:>6.0%}{m['test_deals']:>6}"
            f"{m['model']['log_loss']:>10.4f}{m['baseline']['log_loss']:>9.4f}"
            f"{m['model']['auc']:>10.4f}{m['baseline']['auc']:>9.4f}"
            f"{m['log_loss_gain']:>+9.4f}±{m['log_loss_gain_se']:.4f}  "
            f"{'model used' if model.is_used else 'baseline kept'}"
            f" ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        return model

    for accounts in args.demo_accounts:
        clear()
        create_b2b_slice(by=by, accounts=accounts, seed=42)
        run(f"demo B2B ({accounts} acc.)")
    for shape in dealsets.SHAPES:
        decisions = []
        for seed in range(1, args.seeds + 1):
            clear()
            dealsets.create_deal_set(shape, deals=args.deals, by=by, seed=seed)
            model = run(f"{shape} seed {seed}")
            decisions.append(model is not None and model.is_used)
        expected = shape != "stage-only"
        verdict.check(
            shape,
            all(d == expected for d in decisions),
            f"model {'used' if expected else 'not used'} on every seed "
            f"({sum(decisions)} of {len(decisions)} used)",
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
