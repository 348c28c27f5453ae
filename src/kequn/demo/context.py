"""Reference data, sampling tables and shared helpers of the demo generator."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np

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
from kequn.db import BulkLoader
from kequn.demo import reference as ref
from kequn.events.models import Event

CHUNK_SIZE = 50_000
# Leading index columns whose values grow with the generated ids (rows are written per
# customer, orders by customer and time), so their indexes only ever append.
APPEND_ORDER_COLUMNS = frozenset({"customer_id", "order_id", "merged_into_id", "added_by_id"})
HISTORY_DAYS = 3 * 365
DEMO_SYSTEM = "demo"
# The tables the generator loads in bulk (their next ids are reserved, their rows counted).
LOADED_MODELS = (
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
    for model in LOADED_MODELS:
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
