"""Demo behavioural events around each customer's visits and purchases."""

from __future__ import annotations

import json

import numpy as np

from kequn.db import NullableInts, TableData, Timestamps
from kequn.demo import reference as ref
from kequn.demo.context import (
    EVENT_RATES,
    HISTORY_DAYS,
    Context,
    cat,
    draw,
    draw_seconds_of_day,
    to_utc_seconds,
)
from kequn.events.models import Event


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
