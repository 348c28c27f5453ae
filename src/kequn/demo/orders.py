"""Demo orders and order lines: when each customer buys, what, and what they paid."""

from __future__ import annotations

import numpy as np

from kequn.commerce.models import Order, OrderLine
from kequn.db import TableData, Timestamps
from kequn.demo import reference as ref
from kequn.demo.context import (
    _DEFAULT_MIX,
    ATTACH_GROUP_MIX,
    BEHAVIOURS,
    HISTORY_DAYS,
    MAIN_GROUP_MIX,
    Context,
    cat,
    draw,
    draw_seconds_of_day,
    to_utc_seconds,
)


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
