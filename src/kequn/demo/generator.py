"""Deterministic synthetic customers, orders and events for a phone and electronics brand.

Everything is drawn from numpy's PCG64 seeded with (seed, chunk number), in chunks of
customers, and written with the fastest bulk path of the database (see kequn.db), so a
million customers with ten million orders load in minutes.

Order amounts: every line has amount = quantity * unit_price (list price); the order's
total_amount is what the customer paid, i.e. sum(line amounts) - discount_amount.
Order and event times end the day before `today` (so nothing lies in the future).
The hidden behaviour type of each customer can be written to demo-truth.csv for
evaluating models; it is never stored in the database.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from django.utils import timezone
from tqdm import tqdm

from kequn.commerce.models import Order, OrderLine
from kequn.customers.models import (
    Address,
    CompanyContact,
    Consent,
    Customer,
    CustomerTag,
    Identity,
)
from kequn.db import BulkLoader
from kequn.demo.context import (
    APPEND_ORDER_COLUMNS,
    BEHAVIOURS,
    CHUNK_SIZE,
    DEMO_SYSTEM,
    LOADED_MODELS,
    Context,
    build_context,
)
from kequn.demo.events import event_table
from kequn.demo.orders import draw_orders
from kequn.demo.people import (
    address_table,
    consent_table,
    contact_table,
    customer_table,
    draw_people,
    identity_table,
    tag_table,
)
from kequn.events.models import Event


@dataclass
class DemoSummary:
    """Row counts and duration of one generate_demo_data run."""

    customers: int
    companies: int
    identities: int
    orders: int
    order_lines: int
    events: int
    products: int
    channels: int
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def has_demo_data(using: str = "default") -> bool:
    """Tell whether demo customers were generated into this database."""
    return (
        Identity.objects.using(using)
        .filter(kind=Identity.Kind.EXTERNAL, system=DEMO_SYSTEM)
        .exists()
    )


def generate_demo_data(
    n_customers: int,
    seed: int = 42,
    *,
    today: date | None = None,
    progress: bool = True,
    using: str = "default",
    truth_dir: str | Path | None = None,
    chunk_size: int = CHUNK_SIZE,
    rebuild_indexes: bool = True,
) -> DemoSummary:
    """Generate n_customers demo customers with their orders, events and profile data."""
    started = time.perf_counter()
    today = today or timezone.localdate()
    stages: dict[str, float] = {}
    writer = BulkLoader(using, append_order_columns=APPEND_ORDER_COLUMNS)
    tick = time.perf_counter()
    ctx = build_context(writer, today)
    stages["reference data"] = time.perf_counter() - tick
    truth_rows: list[tuple[np.ndarray, np.ndarray]] = []
    counts = {"companies": 0}
    bar = tqdm(
        total=n_customers, unit="cust", disable=not progress, desc="demo data", unit_scale=True
    )
    writer.begin_load()
    data_models = [
        Customer,
        Identity,
        Address,
        Consent,
        CustomerTag,
        CompanyContact,
        Order,
        OrderLine,
        Event,
    ]
    # Secondary indexes with random keys are dropped for the load and built once after it
    # (100k customers on SQLite: 54 s vs 69 s with them kept); indexes whose keys
    # arrive in ascending order stay (see APPEND_ORDER_COLUMNS).
    rebuild = rebuild_indexes and not writer.conn.in_atomic_block
    try:
        if rebuild:
            tick = time.perf_counter()
            writer.drop_indexes(data_models)
            stages["drop indexes"] = time.perf_counter() - tick
        for chunk_no, first in enumerate(range(0, n_customers, chunk_size)):
            n = min(chunk_size, n_customers - first)
            rng = np.random.Generator(np.random.PCG64([seed, chunk_no]))
            with writer.atomic():
                try:
                    for stage, tables, extra in generate_chunk(ctx, rng, n):
                        tick = time.perf_counter()
                        bar.set_postfix_str(stage)
                        for data in tables:
                            writer.write(data)
                        stages[f"write {stage}"] = stages.get(f"write {stage}", 0.0) + (
                            time.perf_counter() - tick
                        )
                        if stage == "customers":
                            counts["companies"] += extra["companies"]
                            truth_rows.append((extra["ids"], extra["behaviour"]))
                finally:
                    tick = time.perf_counter()
                    writer.flush()  # a background COPY must end before the commit
                    stages["write (wait for COPY)"] = stages.get("write (wait for COPY)", 0.0) + (
                        time.perf_counter() - tick
                    )
            bar.update(n)
            for key, value in ctx_stage_times.items():
                stages[f"generate {key}"] = stages.get(f"generate {key}", 0.0) + value
            ctx_stage_times.clear()
        tick = time.perf_counter()
        bar.set_postfix_str("indexes")
        writer.restore_indexes()
        stages["rebuild indexes"] = time.perf_counter() - tick
        tick = time.perf_counter()
        writer.reset_sequences(data_models)
        writer.analyze(data_models)
        stages["finish"] = time.perf_counter() - tick
    finally:
        writer.restore_indexes()  # also after a failure: never leave the tables without them
        writer.end_load()
        bar.close()
    if truth_dir is not None:
        write_truth(Path(truth_dir), truth_rows)
    rows = {model.__name__: writer.rows.get(model._meta.db_table, 0) for model in LOADED_MODELS}
    return DemoSummary(
        customers=rows["Customer"],
        companies=counts["companies"],
        identities=rows["Identity"],
        orders=rows["Order"],
        order_lines=rows["OrderLine"],
        events=rows["Event"],
        products=len(ctx.product_ids),
        channels=len(ctx.channel_ids),
        seconds=time.perf_counter() - started,
        stages=stages,
        rows=rows,
    )


ctx_stage_times: dict[str, float] = {}


class _Timer:
    """Add the time spent in a with-block to ctx_stage_times[name]."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        ctx_stage_times[self.name] = ctx_stage_times.get(self.name, 0.0) + (
            time.perf_counter() - self.start
        )


def write_truth(directory: Path, rows: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write customer_id,behaviour to directory/demo-truth.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-truth.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["customer_id", "behaviour"])
        names = np.array(BEHAVIOURS, dtype=object)
        for ids, behaviour in rows:
            out.writerows(zip(ids.tolist(), names[behaviour].tolist(), strict=True))
    return path


# --------------------------------------------------------------------------- one chunk


def generate_chunk(ctx: Context, rng: np.random.Generator, n: int):
    """Yield (stage, [TableData], extra) for n new customers, customers first."""
    with _Timer("customers"):
        people = draw_people(ctx, rng, n)
    with _Timer("orders"):
        orders, lines, first_day, last_day = draw_orders(ctx, rng, people)
    with _Timer("customers"):
        customer_rows = customer_table(ctx, rng, people, first_day, last_day)
    yield (
        "customers",
        [customer_rows],
        {
            "companies": int(people["is_company"].sum()),
            "ids": people["ids"],
            "behaviour": people["behaviour"],
        },
    )
    created = customer_rows.columns["created_at"].seconds
    with _Timer("identities"):
        identities = identity_table(ctx, rng, people, created)
        contacts = contact_table(ctx, rng, people, created)
    yield "identities", [identities, contacts], {}
    with _Timer("profile"):
        tables = [
            address_table(ctx, rng, people, created),
            consent_table(ctx, rng, people, created),
            tag_table(ctx, rng, people, created),
        ]
    yield "profile", tables, {}
    yield "orders", [orders, lines], {}
    with _Timer("events"):
        events = event_table(ctx, rng, people, created)
    yield "events", [events], {}
