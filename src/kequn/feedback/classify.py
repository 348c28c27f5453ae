"""Suggest a new ticket's type and queue from its text, learnt from the business's closed tickets.

The models are trained on closed tickets (subject and the customer's first message) and kept
in memory for an hour; a suggestion is offered only when the held-out evaluation beats the
majority class, so agents never see a guess worse than "always complaint".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kequn.analytics.feedback_text import (
    Evaluation,
    evaluate_text_classifier,
    score_sentiment,
    train_text_classifier,
)
from kequn.feedback.models import Response
from kequn.service.models import Ticket, TicketMessage

MIN_TICKETS = 50
CACHE_SECONDS = 3600


@dataclass
class TicketModel:
    target: str
    evaluation: Evaluation
    model: Any
    trained_at: float


_cache: dict[str, TicketModel | None] = {}


def read_closed_tickets(limit: int = 50_000) -> list[dict[str, Any]]:
    """Return closed tickets' text, type, queue and opening time, oldest first."""
    tickets: list[dict[str, Any]] = [
        dict(row)
        for row in Ticket.objects.filter(closed_at__isnull=False, merged_into__isnull=True)
        .order_by("-opened_at")
        .values("pk", "subject", "type", "queue__name", "opened_at")[:limit]
    ]
    first: dict[int, str] = {}
    for ticket_id, body in (
        TicketMessage.objects.filter(ticket_id__in=[t["pk"] for t in tickets], kind="customer")
        .order_by("created_at", "id")
        .values_list("ticket_id", "body")
    ):
        first.setdefault(ticket_id, body)
    for ticket in tickets:
        ticket["text"] = f"{ticket['subject']}\n{first.get(ticket['pk'], '')}"[:4000]
    return sorted(tickets, key=lambda t: t["opened_at"])


def evaluate_ticket_models(tickets: list[dict[str, Any]] | None = None) -> dict[str, Evaluation]:
    """Evaluate the type and queue models on the latest 20 % of closed tickets."""
    tickets = read_closed_tickets() if tickets is None else tickets
    results = {}
    for target, key in (("type", "type"), ("queue", "queue__name")):
        rows = [t for t in tickets if t[key]]
        if len(rows) < MIN_TICKETS or len({t[key] for t in rows}) < 2:
            continue
        try:
            results[target] = evaluate_text_classifier(
                [t["text"] for t in rows], [t[key] for t in rows], [t["opened_at"] for t in rows]
            )
        except ValueError:
            continue
    return results


def _load(target: str) -> TicketModel | None:
    cached = _cache.get(target)
    if target in _cache and (cached is None or time.time() - cached.trained_at < CACHE_SECONDS):
        return cached
    tickets = read_closed_tickets()
    evaluation = evaluate_ticket_models(tickets).get(target)
    model = None
    if evaluation is not None and evaluation.beats_baseline:
        key = "type" if target == "type" else "queue__name"
        rows = [t for t in tickets if t[key]]
        model = TicketModel(
            target,
            evaluation,
            train_text_classifier([t["text"] for t in rows], [t[key] for t in rows]),
            time.time(),
        )
    _cache[target] = model
    return model


def suggest_ticket_fields(text: str) -> dict[str, str]:
    """Return the suggested type and queue for a ticket's text (only models that beat the baseline)."""
    suggestion = {}
    for target in ("type", "queue"):
        model = _load(target)
        if model is not None:
            suggestion[target] = str(model.model.predict([text])[0])
    return suggestion


def evaluate_sentiment() -> dict[str, float | int]:
    """Score the lexicon sentiment against the answers' own scores (poor vs good), with a baseline.

    A comment counts as negative when its answer was a detractor or unhappy and positive when a
    promoter or happy; the baseline always says the more frequent of the two.
    """
    rows = list(
        Response.objects.exclude(comment="")
        .filter(category__in=["detractor", "unhappy", "promoter", "happy"])
        .values_list("comment", "category")
    )
    if not rows:
        return {"n": 0}
    truth = [c in ("promoter", "happy") for _text, c in rows]
    predicted = [score_sentiment(text) >= 0 for text, _c in rows]
    majority = sum(truth) >= len(truth) / 2
    return {
        "n": len(rows),
        "accuracy": round(
            sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(rows), 4
        ),
        "baseline_accuracy": round(sum(t == majority for t in truth) / len(rows), 4),
    }
