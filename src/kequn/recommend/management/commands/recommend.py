"""`kequn recommend`: evaluate models on an interactions file, or train on the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from kequn.recommend.algorithms import evaluate_interactions, format_report
from kequn.recommend.services import train_recommendations
from kequn.security.actors import add_operator_argument, get_operator


def read_interactions(
    path: str, user_col: str, item_col: str, time_col: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (users, items, times) arrays from a CSV; bad input is a one-line CommandError."""
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"interactions file {path} does not exist")
    try:
        header = pd.read_csv(file, nrows=0).columns.tolist()
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(
            f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})"
        ) from None
    missing = [c for c in (user_col, item_col, time_col) if c not in header]
    if missing:
        raise CommandError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; the file has "
            f"{', '.join(map(repr, header)) or 'no columns'} (choose with --user-col, --item-col, --time-col)"
        )
    frame = pd.read_csv(file, usecols=[user_col, item_col, time_col], dtype=str)
    frame = frame.dropna()
    if frame.empty:
        raise CommandError(f"{path}: no complete rows")
    times = pd.to_numeric(frame[time_col], errors="coerce")
    if times.isna().any():
        parsed = pd.to_datetime(frame[time_col], errors="coerce", utc=True, format="mixed")
        bad = parsed.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise CommandError(
                f"{path}: row {row}, column {time_col!r}: {frame[time_col].iloc[row - 2]!r} is not a time"
            )
        times = parsed.astype("int64") // 10**9
    users = pd.factorize(frame[user_col])[0]
    items = pd.factorize(frame[item_col])[0]
    return users.astype(np.int64), items.astype(np.int64), times.to_numpy(dtype=np.float64)


class Command(BaseCommand):
    help = "Recommendations: offline evaluation on any interactions file, training on the store."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        ev = sub.add_parser("evaluate", help="compare models on a user-item-time CSV")
        ev.add_argument("--interactions", required=True, help="CSV file of interactions")
        ev.add_argument("--user-col", default="user_id")
        ev.add_argument("--item-col", default="item_id")
        ev.add_argument("--time-col", default="timestamp")
        ev.add_argument("--max-users", type=int, default=20000, help="users sampled for metrics")
        ev.add_argument("--json", action="store_true", help="print JSON")
        tr = sub.add_parser("train", help="choose a model, store top products per customer")
        tr.add_argument("--quiet", action="store_true", help="no progress bar")
        add_operator_argument(tr)

    def handle(self, *args, action: str, **options) -> None:
        if action == "evaluate":
            self.evaluate(options)
            return
        by = get_operator(options["by"])
        result = train_recommendations(progress=not options["quiet"], by=by)
        self.stdout.write(
            f"Chose {result.model}; stored recommendations for {result.customers:,} customers "
            f"from {result.interactions:,} purchases in {result.seconds:.1f} s"
        )

    def evaluate(self, options: dict) -> None:
        """Print the evaluation report of the interactions file."""
        users, items, times = read_interactions(
            options["interactions"], options["user_col"], options["item_col"], options["time_col"]
        )
        if len(users) < 10:
            raise CommandError(f"{options['interactions']}: too few interactions ({len(users)})")
        report = evaluate_interactions(users, items, times, max_users=options["max_users"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=float))
        else:
            self.stdout.write(format_report(report))
