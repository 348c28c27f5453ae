"""What the back office's rule builder asks the server: pickers, member samples, list filters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from kequn.commerce.models import Category, Product
from kequn.customers.models import Customer, Identity, Tag
from kequn.events.models import Event
from kequn.security.masking import mask_phone
from kequn.segments.models import Segment

SAMPLE_SIZE = 10
LOOKUP_LIMIT = 20


def lookup_tags(query: str, values: list[str]) -> list[dict]:
    """Return tags whose name contains the query (or is one of values): value = name."""
    tags = Tag.objects.select_related("group").order_by("name")
    if values:  # labels for a rule's values: names, or ids (as "save as segment" writes)
        ids = [int(v) for v in values if v.isdigit()]
        found = tags.filter(Q(name__in=values) | Q(pk__in=ids))
        by_id = [{"value": t.pk, "label": str(t)} for t in found if t.pk in ids]
        return by_id + [{"value": t.name, "label": str(t)} for t in found if t.name in values]
    seen: dict[str, str] = {}
    for tag in tags.filter(name__icontains=query)[: LOOKUP_LIMIT * 2]:
        # The builder names tags by name: one entry per name, however many groups hold it.
        seen.setdefault(tag.name, str(tag))
    return [{"value": name, "label": label} for name, label in list(seen.items())[:LOOKUP_LIMIT]]


def lookup_categories(query: str, values: list[str]) -> list[dict]:
    """Return categories whose name or code contains the query: value = code."""
    rows = Category.objects.order_by("name")
    if values:
        rows = rows.filter(code__in=values)
    else:
        rows = rows.filter(Q(name__icontains=query) | Q(code__icontains=query))
    return [
        {"value": code, "label": name or code}
        for code, name in rows.values_list("code", "name")[:LOOKUP_LIMIT]
    ]


def lookup_products(query: str, values: list[str]) -> list[dict]:
    """Return products whose name or SKU contains the query: value = SKU."""
    rows = Product.objects.order_by("name")
    if values:
        rows = rows.filter(sku__in=values)
    else:
        rows = rows.filter(Q(name__icontains=query) | Q(sku__icontains=query))
    return [
        {"value": sku, "label": f"{name} ({sku})" if name else sku}
        for sku, name in rows.values_list("sku", "name")[:LOOKUP_LIMIT]
    ]


def lookup_events(query: str, values: list[str]) -> list[dict]:
    """Return event names starting with the query, from the most recent events."""
    if values:
        return [{"value": v, "label": v} for v in values]
    recent = Event.objects.order_by("-id").values_list("name", flat=True)[:5000]
    names = sorted({n for n in recent if query.lower() in n.lower()})
    return [{"value": n, "label": n} for n in names[:LOOKUP_LIMIT]]


def lookup_segments(query: str, values: list[str]) -> list[dict]:
    """Return segments whose name contains the query: value = id."""
    rows = Segment.objects.order_by("name")
    if values:
        rows = rows.filter(pk__in=[int(v) for v in values if v.isdigit()])
    else:
        rows = rows.filter(name__icontains=query)
    return [{"value": pk, "label": name} for pk, name in rows.values_list("pk", "name")[:50]]


LOOKUPS: dict[str, Callable[[str, list[str]], list[dict]]] = {
    "tag": lookup_tags,
    "category": lookup_categories,
    "product": lookup_products,
    "event": lookup_events,
    "segment": lookup_segments,
}


def describe_sample(customer_ids: list[int]) -> list[dict]:
    """Return a few members for the live preview: name, place, stage; the phone always masked.

    A preview answers every keystroke, so it shows no unmasked personal data (which would
    have to be audited each time); the member list shows what the role may see.
    """
    customers = Customer.objects.filter(pk__in=customer_ids).select_related("score")
    phones: dict[int, str] = {}
    for identity in Identity.objects.filter(customer_id__in=customer_ids, kind="phone").order_by(
        "id"
    ):
        phones.setdefault(identity.customer_id, mask_phone(identity.value))
    rows = []
    for c in sorted(customers, key=lambda c: -c.pk):
        score = getattr(c, "score", None)
        rows.append(
            {
                "id": c.pk,
                "name": str(c),
                "place": " ".join(p for p in (c.province, c.city) if p),
                "phone": phones.get(c.pk, ""),
                "stage": score.get_lifecycle_stage_display()
                if score and score.lifecycle_stage
                else "",
            }
        )
    return rows


# --- the customer list's filters as a rule ------------------------------------------------

# Parameters of the customer list that say nothing about which customers are listed.
IGNORED_PARAMS = {"o", "p", "e", "_changelist_filters", "all", "_to_field", "_popup"}


def _condition(field: str, operator: str, value) -> dict:
    return {"field": field, "operator": operator, "value": value}


def _number(name: str, text: str) -> float | int:
    try:
        number = float(text)
    except ValueError:
        raise ValidationError(
            _("%(name)s: %(value)s is not a number") % {"name": name, "value": text}
        ) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValidationError(
            _("%(name)s: %(value)s is not a number") % {"name": name, "value": text}
        )
    return int(number) if number.is_integer() else number


def _day(name: str, text: str):
    day = parse_date(text.strip()) if text.strip() else None
    if day is None:
        raise ValidationError(_("%(name)s: use a date YYYY-MM-DD") % {"name": name})
    return day


def convert_filters_to_rule(params: Mapping[str, str]) -> dict:
    """Turn the customer list's filters and search into a segment rule with the same members.

    Raise ValidationError naming a filter that a rule cannot express.
    """
    conditions: list[dict] = []
    plain = {
        "kind__exact": "kind",
        "gender__exact": "gender",
        "province": "province",
        "city": "city",
        "source_channel": "source_channel",
        "age_band": "age_band",
        "income_band": "income_band",
        "score__rfm_segment__exact": "rfm_segment",
        "score__lifecycle_stage__exact": "lifecycle_stage",
    }
    ranges = {"score__clv": "clv", "score__churn_percentile": "churn_percentile"}
    digits = {"score__r_score__exact": "r_score", "score__f_score__exact": "f_score"}
    handled = set(IGNORED_PARAMS)
    for param, field in plain.items():
        value = params.get(param, "").strip()
        handled.add(param)
        if value:
            conditions.append(_condition(field, "eq", value))
    for param, field in digits.items():
        value = params.get(param, "").strip()
        handled.add(param)
        if value:
            conditions.append(_condition(field, "eq", _number(field, value)))
    for prefix, field in ranges.items():
        low, high = params.get(f"{prefix}_from", "").strip(), params.get(f"{prefix}_to", "").strip()
        handled |= {f"{prefix}_from", f"{prefix}_to"}
        if low and high:
            conditions.append(
                _condition(field, "between", [_number(field, low), _number(field, high)])
            )
        elif low:
            conditions.append(_condition(field, "gte", _number(field, low)))
        elif high:
            conditions.append(_condition(field, "lte", _number(field, high)))
    low, high = params.get("created_at_from", ""), params.get("created_at_to", "")
    handled |= {"created_at_from", "created_at_to"}
    if low.strip() and high.strip():
        conditions.append(
            _condition(
                "created_at",
                "between",
                [_day("created_at", low).isoformat(), _day("created_at", high).isoformat()],
            )
        )
    elif low.strip():  # from a day on: after the day before
        day = _day("created_at", low) - timedelta(days=1)
        conditions.append(_condition("created_at", "after", day.isoformat()))
    elif high.strip():
        day = _day("created_at", high) + timedelta(days=1)
        conditions.append(_condition("created_at", "before", day.isoformat()))
    for param, field, operator in (("tag", "tag", "any_of"), ("segment", "in_segment", "in")):
        value = params.get(param, "").strip()
        handled.add(param)
        if not value:
            continue
        if not value.isdigit():
            raise ValidationError(_("%(name)s: choose one from the list") % {"name": param})
        if param == "tag":
            tag = Tag.objects.filter(pk=int(value)).first()
            if tag is None:
                raise ValidationError(_("%(name)s: choose one from the list") % {"name": param})
            # By id: another group may hold a tag of the same name, which the list leaves out.
            conditions.append(_condition(field, operator, [tag.pk]))
        else:
            conditions.append(_condition(field, operator, int(value)))
    term = params.get("q", "").strip()
    handled.add("q")
    if term:
        # The list's search also matches ids and identities (phone, email, system:id), which are
        # encrypted and cannot be a rule; a name search can.
        if any(ch.isdigit() for ch in term) or "@" in term or ":" in term:
            raise ValidationError(
                _(
                    "A search by id, phone, email or external id cannot become a rule; search by name."
                )
            )
        conditions.append(_condition("name", "starts_with", term))
    unknown = sorted(k for k, v in params.items() if k not in handled and str(v).strip())
    if unknown:
        raise ValidationError(
            _("These filters cannot become a segment rule: %(names)s. Remove them and try again.")
            % {"names": ", ".join(unknown)}
        )
    if not conditions:
        raise ValidationError(_("Filter the customer list first: a segment needs a condition."))
    return {"match": "all", "conditions": conditions}
