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
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from django.utils import timezone
from tqdm import tqdm

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.models import (
    Address,
    CompanyContact,
    Consent,
    Customer,
    CustomerTag,
    Identity,
    Tag,
    TagGroup,
)
from kequn.customers.places import normalize_city, normalize_province
from kequn.db import BulkLoader, Column, NullableInts, TableData, Timestamps
from kequn.demo import reference as ref
from kequn.events.models import Event
from kequn.security.keyring.services import blind_indexes, encrypt_many

CHUNK_SIZE = 50_000
# Leading index columns whose values grow with the generated ids (rows are written per
# customer, orders by customer and time), so their indexes only ever append.
APPEND_ORDER_COLUMNS = frozenset({"customer_id", "order_id", "merged_into_id", "added_by_id"})
HISTORY_DAYS = 3 * 365
DEMO_SYSTEM = "demo"
LOCAL_OFFSET = 8 * 3600  # all demo cities (China, Singapore, Kuala Lumpur, Hong Kong) are UTC+8

# Hidden behaviour types: name, share of persons, expected orders (see draw_order_counts).
BEHAVIOURS = (
    "prospect",
    "one_time",
    "occasional",
    "loyal",
    "seasonal",
    "big_spender",
    "lapser",
    "returner",
    "b2b",
)
PERSON_SHARES = (0.04, 0.26, 0.14, 0.12, 0.14, 0.05, 0.17, 0.08, 0.0)
COMPANY_SHARE = 0.05
# Mean events per customer in the recent past, by behaviour.
EVENT_RATES = (3.0, 1.5, 3.0, 9.0, 3.0, 6.0, 0.5, 5.0, 2.0)
# Main-line product group probabilities (order of ref.GROUPS), by behaviour.
_DEFAULT_MIX = (0.18, 0.25, 0.12, 0.07, 0.10, 0.22, 0.06)
MAIN_GROUP_MIX = {
    "big_spender": (0.60, 0.05, 0.0, 0.12, 0.10, 0.10, 0.03),
    "loyal": (0.10, 0.12, 0.05, 0.05, 0.08, 0.45, 0.15),
    "b2b": (0.30, 0.35, 0.10, 0.15, 0.02, 0.05, 0.03),
}
ATTACH_GROUP_MIX = (0, 0, 0, 0, 0, 0.7, 0.3)
HOUR_WEIGHTS = np.array(
    [
        1,
        0.5,
        0.3,
        0.2,
        0.2,
        0.3,
        0.8,
        1.5,
        2.5,
        3.5,
        4.5,
        5,
        5.5,
        5,
        4.5,
        4.5,
        5,
        5,
        5.5,
        6.5,
        8,
        9,
        7,
        3,
    ],
    dtype=float,
)


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


@dataclass
class Context:
    """Reference data and counters shared by all chunks."""

    today: date
    start: date
    start_epoch_day: int
    city_weights: np.ndarray
    city_country: np.ndarray
    city_province: np.ndarray
    city_name: np.ndarray
    city_store: np.ndarray  # channel index of the city's store, -1 if none
    city_postcode: np.ndarray
    district_flat: np.ndarray
    district_offset: np.ndarray
    district_count: np.ndarray
    channel_ids: np.ndarray
    channel_kind: np.ndarray
    online_index: np.ndarray  # channel indexes of the four online channels
    product_ids: np.ndarray
    product_cents: np.ndarray
    product_consumable: np.ndarray
    product_group: np.ndarray
    product_json: np.ndarray
    product_popularity: np.ndarray
    group_products: list[np.ndarray]
    group_cum: list[np.ndarray]
    peak_start: np.ndarray
    peak_len: np.ndarray
    tag_ids: dict[str, np.ndarray]
    day_compact: np.ndarray  # 'YYYYMMDD' per history day
    next_ids: dict[type, int] = field(default_factory=dict)
    using: str = "default"  # the database, whose data keys encrypt identities and addresses

    def take_ids(self, model: type, n: int) -> np.ndarray:
        """Reserve n consecutive primary keys of model."""
        first = self.next_ids[model]
        self.next_ids[model] = first + n
        return np.arange(first, first + n, dtype=np.int64)


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
    rows = {
        model.__name__: writer.rows.get(model._meta.db_table, 0)
        for model in (
            Customer,
            Identity,
            Address,
            Consent,
            CustomerTag,
            CompanyContact,
            Order,
            OrderLine,
            Event,
        )
    }
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


# --------------------------------------------------------------------------- reference data


def build_context(writer: BulkLoader, today: date) -> Context:
    """Create or reuse channels, categories, products and tags; return sampling tables."""
    using = writer.using
    channels = ensure_channels(using)
    products = ensure_products(using)
    tag_ids = ensure_tags(using)
    start = today - timedelta(days=HISTORY_DAYS)
    code_to_index = {c.code: i for i, c in enumerate(channels)}
    cities = _canonical_cities()
    weights = np.array([c.weight for c in cities], dtype=float)
    district_flat, offsets, counts = [], [], []
    for c in cities:
        offsets.append(len(district_flat))
        counts.append(len(c.districts))
        district_flat.extend(c.districts)
    specs = ref.build_catalogue()
    by_sku = {p.sku: p for p in products}
    group_index = {g: i for i, g in enumerate(ref.GROUPS)}
    product_group = np.array([group_index[s.group] for s in specs])
    popularity = np.array([s.popularity if s.active else s.popularity * 0.4 for s in specs])
    group_products, group_cum = [], []
    for g in range(len(ref.GROUPS)):
        members = np.flatnonzero(product_group == g)
        group_products.append(members)
        cum = np.cumsum(popularity[members])
        group_cum.append(cum / cum[-1])
    cat_name = {code: name for code, name, _ in ref.CATEGORIES}
    product_json = np.array(
        [
            json.dumps(
                {
                    "sku": s.sku,
                    "name": s.name,
                    "price": s.price,
                    "category": cat_name[s.category].split(" ")[0],
                }
            )
            for s in specs
        ],
        dtype=object,
    )
    peak_start, peak_len = build_peaks(start, today)
    days = np.arange(HISTORY_DAYS, dtype="int64") + (start - date(1970, 1, 1)).days
    day_compact = np.strings.replace(
        np.datetime_as_string(days.astype("datetime64[D]"), unit="D"), "-", ""
    )
    ctx = Context(
        using=using,
        today=today,
        start=start,
        start_epoch_day=(start - date(1970, 1, 1)).days,
        city_weights=weights / weights.sum(),
        city_country=np.array([c.country for c in cities]),
        city_province=np.array([c.province for c in cities]),
        city_name=np.array([c.city for c in cities]),
        city_store=np.array([code_to_index.get(c.store, -1) if c.store else -1 for c in cities]),
        city_postcode=np.array([c.postcode for c in cities]),
        district_flat=np.array(district_flat),
        district_offset=np.array(offsets),
        district_count=np.array(counts),
        channel_ids=np.array([c.pk for c in channels], dtype=np.int64),
        channel_kind=np.array([c.kind for c in channels]),
        online_index=np.array([code_to_index[code] for code, _, _ in ref.ONLINE_CHANNELS]),
        product_ids=np.array([by_sku[s.sku].pk for s in specs], dtype=np.int64),
        product_cents=np.array([s.price * 100 for s in specs], dtype=np.int64),
        product_consumable=np.array([s.consumable for s in specs]),
        product_group=product_group,
        product_json=product_json,
        product_popularity=popularity / popularity.sum(),
        group_products=group_products,
        group_cum=group_cum,
        peak_start=peak_start,
        peak_len=peak_len,
        tag_ids=tag_ids,
        day_compact=day_compact,
    )
    for model in (
        Customer,
        Identity,
        Address,
        Consent,
        CustomerTag,
        CompanyContact,
        Order,
        OrderLine,
        Event,
    ):
        ctx.next_ids[model] = writer.next_id(model)
    return ctx


def _canonical_cities() -> tuple[ref.City, ...]:
    """Return the reference cities with their places in stored form, as every way in has them."""
    return tuple(
        replace(c, province=normalize_province(c.province), city=normalize_city(c.city, c.province))
        for c in ref.CITIES
    )


def ensure_channels(using: str) -> list[Channel]:
    """Create the online channels and stores if missing; return them in a fixed order."""
    wanted = [(code, name, kind, "", "") for code, name, kind in ref.ONLINE_CHANNELS]
    for c in _canonical_cities():
        if c.store:
            wanted.append((c.store, ref.STORE_NAMES[c.store], "store", c.province, c.city))
    out = []
    for code, name, kind, province, city in wanted:
        obj, _ = Channel.objects.using(using).get_or_create(
            code=code, defaults={"name": name, "kind": kind, "province": province, "city": city}
        )
        out.append(obj)
    return out


def ensure_products(using: str) -> list[Product]:
    """Create the category tree and the catalogue if missing; return the products."""
    cats: dict[str, Category] = {}
    for code, name, parent in ref.CATEGORIES:
        cats[code], _ = Category.objects.using(using).get_or_create(
            code=code, defaults={"name": name, "parent": cats.get(parent)}
        )
    specs = ref.build_catalogue()
    existing = set(Product.objects.using(using).values_list("sku", flat=True))
    created = datetime(2022, 1, 1, tzinfo=UTC)
    Product.objects.using(using).bulk_create(
        [
            Product(
                sku=s.sku,
                name=s.name,
                brand=s.brand,
                category=cats[s.category],
                price=s.price,
                is_consumable=s.consumable,
                is_active=s.active,
                created_at=created,
            )
            for s in specs
            if s.sku not in existing
        ]
    )
    return list(Product.objects.using(using).filter(sku__in=[s.sku for s in specs]))


def ensure_tags(using: str) -> dict[str, np.ndarray]:
    """Create the tag groups and tags if missing; return tag ids per group name."""
    out = {}
    for group_name, (description, names) in ref.TAG_GROUPS.items():
        group, _ = TagGroup.objects.using(using).get_or_create(
            name=group_name, defaults={"description": description}
        )
        ids = []
        for name in names:
            tag, _ = Tag.objects.using(using).get_or_create(group=group, name=name)
            ids.append(tag.pk)
        out[group_name] = np.array(ids, dtype=np.int64)
    return out


def build_peaks(start: date, today: date) -> tuple[np.ndarray, np.ndarray]:
    """Return start day (relative to start) and length of each shopping peak, sorted."""
    peaks = []
    for year in range(start.year, today.year + 1):
        double11 = (date(year, 10, 31), 12)
        # Double 11 counts twice: it is by far the biggest peak of the year.
        candidates = [double11, double11, (date(year, 6, 1), 18), (date(year, 12, 8), 5)]
        if year in ref.SPRING_FESTIVAL:
            candidates.append((ref.SPRING_FESTIVAL[year] - timedelta(days=21), 20))
        for day, length in candidates:
            offset = (day - start).days
            if offset >= 0 and offset + length <= HISTORY_DAYS:
                peaks.append((offset, length))
    peaks.sort()
    arr = np.array(peaks, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


# --------------------------------------------------------------------------- helpers


def draw(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    """Draw indexes with the given (unnormalised) weights."""
    w = np.asarray(weights, dtype=float)
    cum = np.cumsum(w / w.sum())
    return np.minimum(np.searchsorted(cum, rng.random(size), side="right"), len(w) - 1)


def cat(*parts) -> np.ndarray:
    """Concatenate string arrays (or scalars) element-wise."""
    out = np.asarray(parts[0]).astype(str)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(str))
    return out


def scramble(values: np.ndarray, digits: int) -> np.ndarray:
    """Map integers to 0..10**digits-1 one-to-one (an affine permutation), looking random."""
    modulus = 10**digits
    return (values * 7_919_371 + 1_234_567) % modulus


def draw_seconds_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw local seconds after midnight, busiest in the evening."""
    hours = draw(rng, HOUR_WEIGHTS, n)
    return hours * 3600 + rng.integers(0, 3600, n)


def to_utc_seconds(ctx: Context, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Turn history day offsets and local seconds of day into UTC epoch seconds."""
    return (ctx.start_epoch_day + day.astype(np.int64)) * 86400 + seconds - LOCAL_OFFSET


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


def draw_people(ctx: Context, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw who the customers are: kind, place, behaviour, names, demographics."""
    ids = ctx.take_ids(Customer, n)
    is_company = rng.random(n) < COMPANY_SHARE
    city = draw(rng, ctx.city_weights, n)
    country = ctx.city_country[city]
    foreign = country != "CN"
    behaviour = draw(rng, PERSON_SHARES, n)
    behaviour[is_company] = BEHAVIOURS.index("b2b")
    male = rng.random(n) < 0.5

    # Chinese names: surname by frequency, one or two given characters by gender.
    sur = draw(rng, [s[2] for s in ref.SURNAMES], n)
    sur_cn = np.array([s[0] for s in ref.SURNAMES])
    sur_py = np.array([s[1] for s in ref.SURNAMES])
    giv_cn = np.array([g[0] for g in ref.GIVEN_CHARS])
    giv_py = np.array([g[1] for g in ref.GIVEN_CHARS])
    pool_m = np.array([i for i, g in enumerate(ref.GIVEN_CHARS) if g[2] in "mn"])
    pool_f = np.array([i for i, g in enumerate(ref.GIVEN_CHARS) if g[2] in "fn"])
    g1 = np.where(
        male, pool_m[rng.integers(0, len(pool_m), n)], pool_f[rng.integers(0, len(pool_f), n)]
    )
    g2 = np.where(
        male, pool_m[rng.integers(0, len(pool_m), n)], pool_f[rng.integers(0, len(pool_f), n)]
    )
    two = rng.random(n) < 0.7
    name = cat(sur_cn[sur], giv_cn[g1], np.where(two, giv_cn[g2], ""))
    pinyin = cat(sur_py[sur], giv_py[g1], np.where(two, giv_py[g2], ""))
    pinyin_rev = cat(giv_py[g1], np.where(two, giv_py[g2], ""), ".", sur_py[sur])

    # Names abroad: romanised, given name after the surname (as in Singapore or Malaysia).
    f_given = np.array([g[0] for g in ref.FOREIGN_GIVEN])
    f_male = np.array([g[1] == "m" for g in ref.FOREIGN_GIVEN])
    f_sur = np.array(ref.FOREIGN_SURNAMES)
    fg_m, fg_f = np.flatnonzero(f_male), np.flatnonzero(~f_male)
    fg = np.where(male, fg_m[rng.integers(0, len(fg_m), n)], fg_f[rng.integers(0, len(fg_f), n)])
    fs = rng.integers(0, len(f_sur), n)
    foreign_name = cat(f_sur[fs], " ", f_given[fg])
    foreign_local = cat(
        np.strings.lower(np.strings.replace(f_given[fg], " ", "")), ".", np.strings.lower(f_sur[fs])
    )
    name = np.where(foreign, foreign_name, name)
    email_local = np.where(
        foreign, foreign_local, np.where(rng.random(n) < 0.6, pinyin, pinyin_rev)
    )

    # Companies.
    words = np.array(ref.COMPANY_WORDS)
    kinds = np.array(ref.COMPANY_KINDS)
    cn_company = cat(
        ctx.city_name[city],
        words[rng.integers(0, len(words), n)],
        kinds[rng.integers(0, len(kinds), n)],
        "有限公司",
    )
    suffix = np.where(
        country == "SG", " Pte. Ltd.", np.where(country == "MY", " Sdn. Bhd.", " Limited")
    )
    foreign_company = cat(f_sur[fs], " Trading", suffix)
    company_name = np.where(foreign, foreign_company, cn_company)
    name = np.where(is_company, company_name, name)
    email_local = np.where(is_company, "purchase", email_local)

    # Age: skewed young, as a phone brand's customers are.
    age = np.clip(18 + rng.gamma(2.2, 8.0, n), 18, 80).astype(np.int64)
    today_epoch = (ctx.today - date(1970, 1, 1)).days
    birthday = today_epoch - (age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    return {
        "ids": ids,
        "n": np.array(n),
        "is_company": is_company,
        "city": city,
        "country": country,
        "foreign": foreign,
        "behaviour": behaviour,
        "male": male,
        "name": name,
        "email_local": email_local,
        "age": age,
        "birthday": birthday,
    }


def draw_order_counts(rng: np.random.Generator, behaviour: np.ndarray) -> np.ndarray:
    """Draw the number of orders per customer from the behaviour type."""
    n = len(behaviour)
    b = behaviour
    base = np.zeros(n, dtype=np.int64)
    lam = np.zeros(n)
    table = {  # behaviour: (minimum, extra Poisson mean)
        "one_time": (1, 0.0),
        "occasional": (2, 3.0),
        "loyal": (15, 25.0),
        "seasonal": (3, 9.0),
        "big_spender": (4, 6.0),
        "lapser": (2, 5.0),
        "returner": (4, 7.0),
        "b2b": (3, 8.0),
    }
    for key, (minimum, extra) in table.items():
        mask = b == BEHAVIOURS.index(key)
        base[mask] = minimum
        lam[mask] = extra
    return base + rng.poisson(lam)


def draw_orders(ctx: Context, rng: np.random.Generator, people: dict):
    """Draw orders and lines; return them with each customer's first and last order day."""
    b = people["behaviour"]
    n = len(b)
    horizon = HISTORY_DAYS
    k = draw_order_counts(rng, b)
    # Activity window per customer in history days [s, e).
    s = np.zeros(n)
    e = np.full(n, float(horizon))
    is_b = {name: b == i for i, name in enumerate(BEHAVIOURS)}
    s = np.where(is_b["occasional"], rng.uniform(0, horizon * 0.8, n), s)
    s = np.where(is_b["loyal"], rng.uniform(0, horizon * 0.4, n), s)
    s = np.where(is_b["seasonal"] | is_b["b2b"], rng.uniform(0, horizon * 0.5, n), s)
    s = np.where(is_b["big_spender"], rng.uniform(0, horizon * 0.6, n), s)
    lapse_start = rng.uniform(0, horizon * 0.5, n)
    s = np.where(is_b["lapser"], lapse_start, s)
    e = np.where(is_b["lapser"], np.minimum(lapse_start + rng.uniform(90, 400, n), horizon), e)
    back_start = rng.uniform(0, horizon * 0.3, n)
    s = np.where(is_b["returner"], back_start, s)
    e = np.where(is_b["returner"], back_start + rng.uniform(60, 250, n), e)
    comeback = rng.uniform(horizon - 200, horizon - 20, n)

    owner = np.repeat(np.arange(n), k)
    total = len(owner)
    ob = b[owner]
    day = s[owner] + rng.random(total) * (e[owner] - s[owner])
    # Returners: about half their orders after a long gap.
    second = (ob == BEHAVIOURS.index("returner")) & (rng.random(total) < 0.5)
    day = np.where(second, comeback[owner] + rng.random(total) * (horizon - comeback[owner]), day)
    day = day.astype(np.int64)

    # Seasonal buyers buy only in peaks; everyone else sometimes waits for the next peak.
    n_peaks = len(ctx.peak_start)
    seasonal = ob == BEHAVIOURS.index("seasonal")
    first_peak = np.searchsorted(ctx.peak_start, s[owner])
    avail = n_peaks - first_peak
    pick = first_peak + (rng.random(total) * np.maximum(avail, 1)).astype(np.int64)
    pick = np.minimum(pick, n_peaks - 1)
    peak_day = ctx.peak_start[pick] + (rng.random(total) * ctx.peak_len[pick]).astype(np.int64)
    day = np.where(seasonal & (avail > 0), peak_day, day)
    nxt = np.minimum(np.searchsorted(ctx.peak_start, day), n_peaks - 1)
    snap_day = ctx.peak_start[nxt] + (rng.random(total) * ctx.peak_len[nxt]).astype(np.int64)
    snap = (~seasonal) & (rng.random(total) < 0.18) & (snap_day >= day) & (snap_day < e[owner])
    day = np.clip(np.where(snap, snap_day, day), 0, horizon - 1)
    in_peak = seasonal | snap
    secs = draw_seconds_of_day(rng, total)

    # Channel: mostly the customer's usual one; stores for city customers, JD for companies.
    city = people["city"]
    store = ctx.city_store[city]
    usual = ctx.online_index[draw(rng, ref.ONLINE_CHANNEL_WEIGHTS, n)]
    usual = np.where((store >= 0) & (rng.random(n) < 0.35), store, usual)
    usual = np.where(
        people["is_company"], ctx.online_index[np.where(rng.random(n) < 0.6, 0, 3)], usual
    )
    other = ctx.online_index[draw(rng, ref.ONLINE_CHANNEL_WEIGHTS, total)]
    other = np.where((store[owner] >= 0) & (rng.random(total) < 0.3), store[owner], other)
    chan = np.where(rng.random(total) < 0.7, usual[owner], other)
    # Chinese marketplaces do not ship abroad: foreign customers buy online or in store.
    market = ctx.channel_kind[chan] == "marketplace"
    chan = np.where(people["foreign"][owner] & market, ctx.online_index[0], chan)
    people["usual_channel"] = usual
    hour = secs // 3600
    is_store = ctx.channel_kind[chan] == "store"
    secs = np.where(is_store & ((hour < 10) | (hour > 21)), 10 * 3600 + secs % (11 * 3600), secs)

    # Sort orders by customer and time so ids follow each customer's history.
    order_sort = np.lexsort((secs, day, owner))
    owner, day, secs, chan, in_peak = (a[order_sort] for a in (owner, day, secs, chan, in_peak))
    ob = b[owner]
    order_ids = ctx.take_ids(Order, total)

    # Status: recent orders are still moving; older ones completed, cancelled or refunded.
    r = rng.random(total)
    recent = day >= horizon - 3
    status = np.where(r < 0.88, "completed", np.where(r < 0.945, "cancelled", "refunded"))
    status = np.where(
        recent, np.where(r < 0.3, "pending", np.where(r < 0.7, "paid", "shipped")), status
    )

    # Lines: a main item by behaviour, then accessories or services.
    n_lines = 1 + (rng.random(total) > 0.55) + (rng.random(total) > 0.88)
    line_order = np.repeat(np.arange(total), n_lines)
    first_of_order = np.concatenate(([0], np.cumsum(n_lines)[:-1]))
    is_main = np.zeros(len(line_order), dtype=bool)
    is_main[first_of_order] = True
    lb = ob[line_order]
    group = np.empty(len(line_order), dtype=np.int64)
    for i, name in enumerate(BEHAVIOURS):
        mask = is_main & (lb == i)
        group[mask] = draw(rng, MAIN_GROUP_MIX.get(name, _DEFAULT_MIX), int(mask.sum()))
    group[~is_main] = draw(rng, ATTACH_GROUP_MIX, int((~is_main).sum()))
    prod = np.empty(len(line_order), dtype=np.int64)
    for g in range(len(ref.GROUPS)):
        mask = group == g
        m = int(mask.sum())
        if m:
            pos = np.searchsorted(ctx.group_cum[g], rng.random(m), side="right")
            prod[mask] = ctx.group_products[g][np.minimum(pos, len(ctx.group_products[g]) - 1)]
    qty = np.ones(len(line_order), dtype=np.int64)
    qty = np.where(ctx.product_consumable[prod] & (rng.random(len(qty)) < 0.15), 2, qty)
    b2b = lb == BEHAVIOURS.index("b2b")
    qty = np.where(is_main & b2b, rng.integers(5, 31, len(qty)), qty)
    unit = ctx.product_cents[prod]
    amount = qty * unit
    gross = np.bincount(line_order, weights=amount, minlength=total).astype(np.int64)
    # Discounts: percentage off in peaks, fixed coupons otherwise, never above half the price.
    pct = rng.uniform(0.05, 0.15, total)
    coupon = np.array([2000, 5000, 10000])[rng.integers(0, 3, total)]
    rd = rng.random(total)
    discount = np.where(
        in_peak & (rd < 0.6),
        (gross * pct // 100).astype(np.int64) * 100,
        np.where(rd < 0.15, coupon, 0),
    )
    discount = np.minimum(discount, gross // 2 // 100 * 100)
    paid = gross - discount

    utc = to_utc_seconds(ctx, day, secs)
    cust_ids = people["ids"][owner]
    number = cat("YF", ctx.day_compact[day], np.strings.zfill(order_ids.astype(str), 10))
    orders = TableData(
        Order,
        {
            "id": order_ids,
            "number": number,
            "customer": cust_ids,
            "channel": ctx.channel_ids[chan],
            "status": status,
            "currency": np.full(total, "CNY"),
            "total_amount": paid / 100.0,
            "discount_amount": discount / 100.0,
            "ordered_at": Timestamps(utc),
        },
    )
    lines = TableData(
        OrderLine,
        {
            "id": ctx.take_ids(OrderLine, len(line_order)),
            "order": order_ids[line_order],
            "product": ctx.product_ids[prod],
            "quantity": qty,
            "unit_price": unit / 100.0,
            "amount": amount / 100.0,
        },
    )
    first_day = np.full(n, -1, dtype=np.int64)
    last_day = np.full(n, -1, dtype=np.int64)
    if total:
        starts = np.concatenate(([0], np.cumsum(k)[:-1]))
        has = k > 0
        first_day[has] = day[starts[has]]
        last_day[has] = day[starts[has] + k[has] - 1]
    people["order_count"] = k
    return orders, lines, first_day, last_day


def customer_table(
    ctx: Context,
    rng: np.random.Generator,
    people: dict,
    first_day: np.ndarray,
    last_day: np.ndarray,
) -> TableData:
    """Build the customer rows, with realistic gaps in the profile."""
    n = len(people["ids"])
    company = people["is_company"]
    foreign = people["foreign"]
    city = people["city"]
    # Registered shortly before the first order; prospects at any time.
    created_day = np.where(
        first_day >= 0, first_day - rng.integers(0, 60, n), rng.integers(0, HISTORY_DAYS, n)
    )
    created = to_utc_seconds(ctx, created_day, draw_seconds_of_day(rng, n))
    updated_day = np.maximum(np.where(last_day >= 0, last_day, created_day), created_day)
    updated = np.maximum(to_utc_seconds(ctx, updated_day, np.full(n, 23 * 3600)), created)

    gender = np.where(people["male"], "m", "f")
    gender = np.where(company | (rng.random(n) < 0.08), "", gender)
    has_birthday = ~company & (rng.random(n) > 0.22)
    age = people["age"]
    band = np.array(ref.AGE_BANDS)[np.searchsorted(ref.AGE_BAND_LIMITS, age, side="right")]
    band = np.where(company | (~has_birthday & (rng.random(n) < 0.4)), "", band)
    income = np.array(ref.INCOME_BANDS)[draw(rng, ref.INCOME_WEIGHTS, n)]
    income = np.where(company | (rng.random(n) < 0.3), "", income)
    occupations = np.array(ref.OCCUPATIONS)
    occupation = occupations[rng.integers(0, len(occupations), n)]
    occupation = np.where(age >= 62, "退休", np.where(age <= 22, "学生", occupation))
    occupation = np.where(company | (rng.random(n) < 0.35), "", occupation)
    industries = np.array(ref.INDUSTRIES)
    industry = np.where(company, industries[rng.integers(0, len(industries), n)], "")
    province = ctx.city_province[city]
    city_name = ctx.city_name[city]
    gap = rng.random(n)
    city_name = np.where(gap < 0.06, "", city_name)
    province = np.where(gap < 0.03, "", province)
    r = rng.random(n)
    language = np.where(
        foreign,
        np.where(r < 0.7, "en", np.where(r < 0.95, "zh-hans", "")),
        np.where(r < 0.9, "zh-hans", np.where(r < 0.98, "", "en")),
    )
    kind_to_source = {"online": "online", "app": "app", "store": "store"}
    codes = [ch for ch, _, _ in ref.ONLINE_CHANNELS]
    source_of_channel = np.array(
        [kind_to_source.get(k, "") for k in ctx.channel_kind], dtype=object
    )
    for i, code in enumerate(codes):
        if code in ("tmall", "jd"):
            source_of_channel[ctx.online_index[i]] = code
    source = source_of_channel[people["usual_channel"]].astype(str)
    r = rng.random(n)
    source = np.where(r < 0.06, "wechat", np.where(r < 0.10, "referral", source))
    people["source"] = source
    people["created_day"] = created_day
    return TableData(
        Customer,
        {
            "id": people["ids"],
            "kind": np.where(company, "company", "person"),
            "name": people["name"],
            "gender": gender,
            **encrypted_birthdays(ctx, people["birthday"], has_birthday),
            "age_band": band,
            "income_band": income,
            "occupation": occupation,
            "industry": industry,
            "country": people["country"],
            "province": province,
            "city": city_name,
            "preferred_language": language,
            "source_channel": source,
            "external_ref": cat("DEMO-", np.strings.zfill(people["ids"].astype(str), 8)),
            "merged_into": NullableInts(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)),
            "created_at": Timestamps(created),
            "updated_at": Timestamps(updated),
        },
    )


def phone_numbers(ctx: Context, ids: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Return an E.164 mobile number per customer id, unique by construction."""
    out = np.empty(len(ids), dtype="U16")
    for code, prefixes in ref.PHONE_PREFIXES.items():
        mask = country == code
        if not mask.any():
            continue
        digits = ref.PHONE_SUFFIX_DIGITS[code]
        sub = ids[mask]
        pre = np.array(prefixes)[sub % len(prefixes)]
        rest = scramble(sub // len(prefixes), digits)
        out[mask] = cat("+", pre, np.strings.zfill(rest.astype(str), digits))
    return out


def identity_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Build external ids for all, phones, emails and WeChat openids for many."""
    ids = people["ids"]
    n = len(ids)
    company = people["is_company"]
    foreign = people["foreign"]
    parts = []  # (customer index, kind, value, verified)
    idx = np.arange(n)
    parts.append(
        (
            idx,
            "external",
            cat("DEMO-", np.strings.zfill(ids.astype(str), 8)),
            np.ones(n, dtype=bool),
        )
    )
    has_phone = rng.random(n) < np.where(company, 0.7, 0.95)
    phones = phone_numbers(ctx, ids, people["country"])
    parts.append((idx[has_phone], "phone", phones[has_phone], rng.random(n)[has_phone] < 0.6))
    has_email = rng.random(n) < np.where(company, 0.8, 0.75)
    cn_domain = np.array(ref.EMAIL_DOMAINS_CN)[draw(rng, ref.EMAIL_WEIGHTS_CN, n)]
    f_domain = np.array(ref.EMAIL_DOMAINS_FOREIGN)[draw(rng, ref.EMAIL_WEIGHTS_FOREIGN, n)]
    domain = np.where(foreign, f_domain, cn_domain)
    domain = np.where(company, "yfpartner.com.cn", domain)
    # QQ users often use their numeric QQ id; the id keeps every address unique.
    qq_number = (scramble(ids, 9) + 100_000_000).astype(str)
    local = np.where(
        (domain == "qq.com") & (rng.random(n) < 0.6),
        qq_number,
        cat(people["email_local"], ids.astype(str)),
    )
    email = cat(local, "@", domain)
    parts.append((idx[has_email], "email", email[has_email], rng.random(n)[has_email] < 0.5))
    has_wechat = ~company & ~foreign & (rng.random(n) < 0.45)
    alphabet = np.frombuffer(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
    )
    m = int(has_wechat.sum())
    noise = alphabet[rng.integers(0, 64, (m, 17))].copy().view("S17").ravel().astype("U17")
    openid = cat("o", noise, np.strings.zfill(ids[has_wechat].astype(str), 10))
    parts.append((idx[has_wechat], "wechat", openid, np.ones(m, dtype=bool)))

    who = np.concatenate([p[0] for p in parts])
    total = len(who)
    return TableData(
        Identity,
        {
            "id": ctx.take_ids(Identity, total),
            "customer": ids[who],
            "kind": np.concatenate([np.full(len(p[0]), p[1]) for p in parts]),
            "system": np.concatenate(
                [np.full(len(p[0]), DEMO_SYSTEM if p[1] == "external" else "") for p in parts]
            ),
            **encrypted_identity_values(ctx, np.concatenate([p[2].astype(str) for p in parts])),
            "verified": np.concatenate([p[3] for p in parts]),
            "created_at": Timestamps(created[who]),
        },
    )


def encrypt_column(ctx: Context, model: type, name: str, values: np.ndarray) -> np.ndarray:
    """Return the stored (encrypted) form of a column of an encrypted field; "" stays ""."""
    purpose = model._meta.get_field(name).purpose
    out = np.full(len(values), "", dtype=object)
    filled = np.flatnonzero(values != "")
    out[filled] = encrypt_many(purpose, values[filled].tolist(), ctx.using)
    return out


def encrypted_birthdays(ctx: Context, days: np.ndarray, known: np.ndarray) -> dict[str, Column]:
    """Return the encrypted birthdays (NULL where unknown) and their birth years in clear."""
    dates = days.astype("datetime64[D]")
    text = np.where(known, np.datetime_as_string(dates, unit="D"), "")
    stored = encrypt_column(ctx, Customer, "birthday", text)
    stored[~known] = None
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    return {"birthday": stored, "birth_year": NullableInts(years, ~known)}


def encrypted_identity_values(ctx: Context, values: np.ndarray) -> dict[str, np.ndarray]:
    """Return the encrypted identity values and their blind indexes (for exact lookups)."""
    return {
        "value": encrypt_column(ctx, Identity, "value", values),
        "value_index": np.array(blind_indexes(values.tolist()), dtype=object),
    }


def contact_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Link each company to 1-4 distinct person customers of the same chunk."""
    company_idx = np.flatnonzero(people["is_company"])
    persons = rng.permutation(np.flatnonzero(~people["is_company"]))
    size = np.minimum(rng.integers(1, 5, len(company_idx)), 4)
    cum = np.cumsum(size)
    keep = cum <= len(persons)
    company_idx, size = company_idx[keep], size[keep]
    total = int(size.sum())
    companies = np.repeat(company_idx, size)
    contacts = persons[:total]
    first = np.zeros(total, dtype=bool)
    first[np.cumsum(size) - size] = True
    titles = np.array(ref.CONTACT_TITLES)
    ids = people["ids"]
    return TableData(
        CompanyContact,
        {
            "id": ctx.take_ids(CompanyContact, total),
            "company": ids[companies],
            "contact": ids[contacts],
            "title": titles[rng.integers(0, len(titles), total)],
            "is_primary": first,
            "created_at": Timestamps(np.maximum(created[companies], created[contacts])),
        },
    )


def address_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Give most customers a delivery address in their city, some a second one."""
    n = len(people["ids"])
    company = people["is_company"]
    has = rng.random(n) < np.where(company, 0.9, 0.65)
    second = has & (rng.random(n) < 0.15)
    who = np.concatenate([np.flatnonzero(has), np.flatnonzero(second)])
    is_default = np.concatenate([np.ones(int(has.sum()), bool), np.zeros(int(second.sum()), bool)])
    m = len(who)
    city = people["city"][who]
    foreign = people["foreign"][who]
    district = ctx.district_flat[
        ctx.district_offset[city] + (rng.random(m) * ctx.district_count[city]).astype(np.int64)
    ]
    district = np.where(rng.random(m) < 0.1, "", district)
    roads = np.array(ref.ROADS)
    f_roads = np.array(ref.FOREIGN_ROADS)
    num = rng.integers(1, 999, m).astype(str)
    cn_line = cat(
        roads[rng.integers(0, len(roads), m)],
        num,
        "号",
        rng.integers(1, 30, m).astype(str),
        "栋",
        rng.integers(101, 3300, m).astype(str),
        "室",
    )
    f_line = cat(
        num,
        " ",
        f_roads[rng.integers(0, len(f_roads), m)],
        " #",
        rng.integers(2, 40, m).astype(str),
        "-",
        rng.integers(1, 99, m).astype(str),
    )
    line = np.where(foreign, f_line, cn_line)
    # Chinese postcodes: 3-digit city prefix + 3 digits; Kuala Lumpur 50xxx; none else.
    pc = ctx.city_postcode[city]
    rest = rng.integers(0, 1000, m)
    postcode = np.where(pc == "", "", cat(pc, np.strings.zfill(rest.astype(str), 3)))
    label = np.where(
        company[who], "公司", np.where(is_default, "家", np.where(rng.random(m) < 0.5, "公司", ""))
    )
    return TableData(
        Address,
        {
            "id": ctx.take_ids(Address, m),
            "customer": people["ids"][who],
            "label": label,
            "country": people["country"][who],
            "province": ctx.city_province[city],
            "city": ctx.city_name[city],
            "district": district,
            "line": encrypt_column(ctx, Address, "line", line),
            "postcode": encrypt_column(ctx, Address, "postcode", postcode),
            "is_default": is_default,
            "created_at": Timestamps(created[who] + rng.integers(0, 86400 * 30, m)),
        },
    )


def consent_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Record consent decisions; some marketing consents are withdrawn and a few re-granted."""
    n = len(people["ids"])
    # Probability of a recorded decision per (channel, purpose).
    p_marketing = {"email": 0.45, "sms": 0.5, "phone": 0.12, "wechat": 0.25}
    p_service = {"email": 0.35, "sms": 0.45, "phone": 0.1, "wechat": 0.2}
    who_parts, chan_parts, purpose_parts, granted_parts, time_parts, source_parts = (
        [],
        [],
        [],
        [],
        [],
        [],
    )
    now = to_utc_seconds(ctx, np.array([HISTORY_DAYS - 1]), np.array([20 * 3600]))[0]
    sources = np.array(ref.CONSENT_SOURCES)
    withdraw_sources = np.array(ref.WITHDRAW_SOURCES)
    for channel in ref.CONSENT_CHANNELS:
        for purpose, probs in (("marketing", p_marketing), ("service", p_service)):
            has = np.flatnonzero(rng.random(n) < probs[channel])
            m = len(has)
            t0 = created[has] + rng.integers(0, 86400 * 20, m)
            granted = rng.random(m) < 0.9
            withdraw_p = 0.2 if purpose == "marketing" else 0.05
            withdrawn = granted & (rng.random(m) < withdraw_p)
            t1 = t0 + rng.integers(86400 * 30, 86400 * 500, m)
            withdrawn &= t1 < now
            regrant = withdrawn & (rng.random(m) < 0.25)
            t2 = t1 + rng.integers(86400 * 10, 86400 * 300, m)
            regrant &= t2 < now
            for mask, g, t, src in (
                (np.ones(m, bool), granted, t0, sources[rng.integers(0, len(sources), m)]),
                (
                    withdrawn,
                    np.zeros(m, bool),
                    t1,
                    withdraw_sources[rng.integers(0, len(withdraw_sources), m)],
                ),
                (regrant, np.ones(m, bool), t2, sources[rng.integers(0, len(sources), m)]),
            ):
                who_parts.append(has[mask])
                chan_parts.append(np.full(int(mask.sum()), channel))
                purpose_parts.append(np.full(int(mask.sum()), purpose))
                granted_parts.append(g[mask])
                time_parts.append(t[mask])
                source_parts.append(src[mask])
    who = np.concatenate(who_parts)
    order = np.argsort(who, kind="stable")
    return TableData(
        Consent,
        {
            "id": ctx.take_ids(Consent, len(who)),
            "customer": people["ids"][who[order]],
            "channel": np.concatenate(chan_parts)[order],
            "purpose": np.concatenate(purpose_parts)[order],
            "granted": np.concatenate(granted_parts)[order],
            "source": np.concatenate(source_parts)[order],
            "recorded_at": Timestamps(np.concatenate(time_parts)[order]),
        },
    )


def tag_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Tag customers with their source, zero to two interests and, for some, a value grade."""
    n = len(people["ids"])
    source_tag = {
        "online": 0,
        "app": 0,
        "store": 1,
        "tmall": 2,
        "jd": 3,
        "wechat": 4,
        "referral": 5,
    }
    src = people["source"]
    src_index = np.zeros(n, dtype=np.int64)
    for key, value in source_tag.items():
        src_index[src == key] = value
    has_src = rng.random(n) < 0.9
    interest_ids = ctx.tag_ids["兴趣"]
    k = len(interest_ids)
    n_interest = draw(rng, (0.35, 0.4, 0.25), n)
    i1 = rng.integers(0, k, n)
    i2 = (i1 + 1 + rng.integers(0, k - 1, n)) % k  # distinct from i1
    value_by_behaviour = np.array([2, 2, 1, 0, 1, 0, 3, 1, 0])  # index into 价值 tags
    noisy = rng.random(n) < 0.15
    value = np.where(noisy, rng.integers(0, 4, n), value_by_behaviour[people["behaviour"]])
    has_value = rng.random(n) < 0.5
    idx = np.arange(n)
    who = np.concatenate([idx[has_src], idx[n_interest >= 1], idx[n_interest >= 2], idx[has_value]])
    tags = np.concatenate(
        [
            ctx.tag_ids["来源"][src_index[has_src]],
            interest_ids[i1[n_interest >= 1]],
            interest_ids[i2[n_interest >= 2]],
            ctx.tag_ids["价值"][value[has_value]],
        ]
    )
    order = np.argsort(who, kind="stable")
    who, tags = who[order], tags[order]
    m = len(who)
    return TableData(
        CustomerTag,
        {
            "id": ctx.take_ids(CustomerTag, m),
            "customer": people["ids"][who],
            "tag": tags,
            "added_by": NullableInts(np.zeros(m, dtype=np.int64), np.ones(m, dtype=bool)),
            "added_at": Timestamps(created[who] + rng.integers(3600, 86400 * 90, m)),
        },
    )


def event_table(
    ctx: Context, rng: np.random.Generator, people: dict, created: np.ndarray
) -> TableData:
    """Build recent browse and cart events for customers and anonymous visitors."""
    n = len(people["ids"])
    horizon = HISTORY_DAYS
    k = rng.poisson(np.array(EVENT_RATES)[people["behaviour"]])
    owner = np.repeat(np.arange(n), k)
    visitors = int(n * 0.3)
    vk = rng.integers(1, 5, visitors)
    v_owner = np.repeat(np.arange(visitors), vk)
    total = len(owner) + len(v_owner)
    identified = np.concatenate([np.ones(len(owner), bool), np.zeros(len(v_owner), bool)])
    day = horizon - 1 - np.minimum(rng.exponential(40.0, total).astype(np.int64), 179)
    cust_created = people["created_day"][owner]
    day[: len(owner)] = np.maximum(day[: len(owner)], np.minimum(cust_created, horizon - 1))
    occurred = to_utc_seconds(ctx, day, draw_seconds_of_day(rng, total))
    received = occurred + rng.integers(0, 4, total)

    kind = draw(rng, (0.6, 0.25, 0.15), total)  # track, page, screen
    track_name = np.array(["Product Viewed", "Product Added", "Checkout Started"])[
        draw(rng, (0.6, 0.25, 0.15), total)
    ]
    pages = np.array([p[0] for p in ref.PAGES])
    page_json = np.array([json.dumps({"title": t, "path": p}) for t, p in ref.PAGES], dtype=object)
    screens = np.array(ref.SCREENS)
    screen_json = np.array([json.dumps({"screen": s}) for s in ref.SCREENS], dtype=object)
    page_i = rng.integers(0, len(pages), total)
    screen_i = rng.integers(0, len(screens), total)
    prod = draw(rng, ctx.product_popularity, total)
    name = np.where(kind == 0, track_name, np.where(kind == 1, pages[page_i], screens[screen_i]))
    props = np.where(
        kind == 0,
        ctx.product_json[prod],
        np.where(kind == 1, page_json[page_i], screen_json[screen_i]),
    )
    channel = np.array(["web", "app", "miniprogram"])[draw(rng, (0.45, 0.4, 0.15), total)]
    channel = np.where(kind == 1, "web", np.where(kind == 2, "app", channel))
    ev_ids = ctx.take_ids(Event, total)
    customer = np.concatenate([people["ids"][owner], np.zeros(len(v_owner), dtype=np.int64)])
    visitor_key = rng.integers(10**11, 10**12, visitors)
    anon = np.concatenate([np.full(len(owner), ""), cat("anon-", visitor_key[v_owner].astype(str))])
    return TableData(
        Event,
        {
            "id": ev_ids,
            "type": np.array(["track", "page", "screen"])[kind],
            "name": name,
            "occurred_at": Timestamps(occurred),
            "received_at": Timestamps(received),
            "customer": NullableInts(customer, ~identified),
            "anonymous_id": anon,
            "channel": channel,
            "message_id": cat("demo-", ev_ids.astype(str)),
            "properties": props,
        },
    )
