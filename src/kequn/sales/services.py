"""Every change to sales data goes through here: API, back office, board, imports and jobs.

Each write takes the actor (``by``), checks the business rules with a one-line message that
names the field and the fix, and writes its audit entry in the same transaction.
"""

from __future__ import annotations

import calendar
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kequn.commerce.models import Product
from kequn.customers.identities import IdentityError, fold_text, normalize_phone
from kequn.customers.models import CompanyContact, Customer, Identity
from kequn.customers.services import IdentityInput, create_customer
from kequn.sales.access import get_visible_owner_ids, is_owner_visible
from kequn.sales.models import (
    AccountProfile,
    Activity,
    BuyingRole,
    Deal,
    DealProduct,
    DealStageChange,
    Pipeline,
    PoolEvent,
    PoolSettings,
    Stage,
    Task,
    Team,
)
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit

logger = logging.getLogger(__name__)

# Identity systems under which a company's registration code and web domain are stored, so
# the identity rules (one customer per value, blind-index lookups) cover them too.
CREDIT_CODE_SYSTEM = "uscc"
DOMAIN_SYSTEM = "domain"

# Legal-form words that do not tell two companies apart (深圳华强有限公司 = 深圳华强).
_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "分公司",
    "公司",
    "集团",
    "co ltd",
    "company limited",
    "limited",
    "ltd",
    "inc",
    "corporation",
    "corp",
    "llc",
    "gmbh",
    "co",
)
_CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = [pow(3, i, 31) for i in range(17)]


def _username(by: Actor) -> str:
    return by.get_username()[:150]


def today() -> date:
    """Return today's date in the business time zone."""
    return timezone.localdate()


# --- accounts ---------------------------------------------------------------------------


def normalize_company_name(name: str) -> str:
    """Return a company name folded for comparison: no case, space, punctuation or legal form."""
    text = unicodedata.normalize("NFKC", name or "").lower()
    text = re.sub(r"[\s\W_]+", " ", text).strip()
    changed = True
    while changed and text:
        changed = False
        for form in _LEGAL_FORMS:
            if text.endswith(form) and len(text) > len(form):
                text = text[: -len(form)].strip()
                changed = True
    return text.replace(" ", "")


def normalize_credit_code(value: str) -> str:
    """Return a unified social credit code (统一社会信用代码) checked, or raise ValidationError."""
    code = fold_text(value or "").upper().replace(" ", "").replace("-", "")
    if len(code) != 18 or any(c not in _CREDIT_CODE_CHARS for c in code):
        raise ValidationError(
            f"credit_code {value!r}: a unified social credit code has 18 characters "
            "(digits and capital letters without I, O, S, V, Z)"
        )
    total = sum(
        _CREDIT_CODE_CHARS.index(c) * w for c, w in zip(code, _CREDIT_CODE_WEIGHTS, strict=False)
    )
    check = _CREDIT_CODE_CHARS[(31 - total % 31) % 31]
    if code[-1] != check:
        raise ValidationError(
            f"credit_code {value!r}: the check character does not match; copy the code "
            "again from the business licence"
        )
    return code


def make_credit_code(prefix: str) -> str:
    """Return a valid credit code completing 17 characters with their check character (demo)."""
    body = prefix.upper()[:17].ljust(17, "0")
    total = sum(
        _CREDIT_CODE_CHARS.index(c) * w for c, w in zip(body, _CREDIT_CODE_WEIGHTS, strict=False)
    )
    return body + _CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def normalize_domain(value: str) -> str:
    """Return a web domain without scheme, path, port or www (https://www.Acme.cn/ → acme.cn)."""
    text = fold_text(value or "").lower()
    text = re.sub(r"^[a-z]+://", "", text).split("/")[0].split(":")[0].split("@")[-1]
    text = text.removeprefix("www.").strip(".")
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", text):
        raise ValidationError(f"domain {value!r}: give a web domain such as example.com")
    return text


@dataclass(frozen=True)
class DuplicateHit:
    customer_id: int
    rule: str  # name, phone, credit_code, domain
    visible: bool  # whether the user may see that account

    def describe(self) -> str:
        """Say what matched, naming the account only to a user who may see it."""
        what = {
            "name": "the same name",
            "phone": "the same phone number",
            "credit_code": "the same unified social credit code",
            "domain": "the same web domain",
        }[self.rule]
        if self.visible:
            return f"account #{self.customer_id} has {what}"
        return f"an account of another rep has {what}"


@dataclass
class AccountInput:
    name: str
    phone: str = ""
    credit_code: str = ""
    domain: str = ""
    industry: str = ""
    province: str = ""
    city: str = ""
    parent_id: int | None = None
    team_id: int | None = None
    source_channel: str = ""
    external_ref: str = ""
    in_pool: bool = False


class DuplicateAccountError(ValidationError):
    """Creating the account would make two reps work the same company (撞单)."""

    def __init__(self, hits: Sequence[DuplicateHit]) -> None:
        self.hits = list(hits)
        text = "; ".join(h.describe() for h in hits)
        super().__init__(
            f"possible duplicate account: {text}; check with its owner, or send confirm=true "
            "to create it anyway"
        )


def _external_owner(system: str, value: str) -> int | None:
    identity = Identity.objects.with_value(value).filter(kind="external", system=system).first()
    return identity.customer_id if identity else None


def find_duplicate_accounts(data: AccountInput, *, by: Actor) -> list[DuplicateHit]:
    """Return the companies that look like the one described (name, phone, credit code, domain)."""
    owners = get_visible_owner_ids(by)
    hits: dict[tuple[int, str], DuplicateHit] = {}

    def add(customer_id: int | None, rule: str) -> None:
        if customer_id is None:
            return
        owner = Customer.objects.filter(pk=customer_id).values_list("owner_id", flat=True).first()
        visible = owners is None or owner in owners or owner is None
        hits[(customer_id, rule)] = DuplicateHit(customer_id, rule, visible)

    if data.credit_code:
        add(
            _external_owner(CREDIT_CODE_SYSTEM, normalize_credit_code(data.credit_code)),
            "credit_code",
        )
    if data.domain:
        add(_external_owner(DOMAIN_SYSTEM, normalize_domain(data.domain)), "domain")
    if data.phone:
        try:
            phone = normalize_phone(data.phone)
        except IdentityError as exc:
            raise ValidationError(f"phone: {exc}") from None
        identity = Identity.objects.with_value(phone).filter(kind="phone").first()
        add(identity.customer_id if identity else None, "phone")
    key = normalize_company_name(data.name)
    if key:
        # The name's first characters narrow the search; the folded names decide.
        prefix = unicodedata.normalize("NFKC", data.name).strip()[:2]
        candidates = Customer.objects.filter(
            kind=Customer.Kind.COMPANY, merged_into__isnull=True, name__icontains=prefix
        ).values_list("id", "name")
        for customer_id, name in candidates[:5000]:
            if normalize_company_name(name) == key:
                add(customer_id, "name")
    return sorted(hits.values(), key=lambda h: (h.customer_id, h.rule))


def create_account(
    data: AccountInput,
    *,
    by: Actor,
    owner: Any = None,
    confirm: bool = False,
    source: str = "backoffice",
) -> Customer:
    """Create a company account with its profile; warn of a duplicate unless confirmed.

    The same credit code is always refused: it is the same company, whoever owns it.
    """
    if not data.name.strip():
        raise ValidationError("name: an account needs the company's name")
    hits = find_duplicate_accounts(data, by=by)
    hard = [h for h in hits if h.rule == "credit_code"]
    if hard:
        raise ValidationError(
            f"credit_code: {hard[0].describe()}; the same company cannot be created twice"
        )
    if hits and not confirm:
        raise DuplicateAccountError(hits)
    taken = {h.rule for h in hits}
    identities = []
    if data.credit_code:
        identities.append(
            IdentityInput("external", normalize_credit_code(data.credit_code), CREDIT_CODE_SYSTEM)
        )
    if data.domain and "domain" not in taken:
        identities.append(IdentityInput("external", normalize_domain(data.domain), DOMAIN_SYSTEM))
    if data.phone and "phone" not in taken:
        identities.append(IdentityInput("phone", data.phone))
    parent = _get_parent(data.parent_id, by=by)
    _check_team(data.team_id)
    owner = owner if owner is not None else (None if data.in_pool else get_user_or_none(by))
    with transaction.atomic():
        customer = create_customer(
            {
                "kind": Customer.Kind.COMPANY,
                "name": data.name.strip(),
                "industry": data.industry,
                "province": data.province,
                "city": data.city,
                "source_channel": data.source_channel,
                "external_ref": data.external_ref,
            },
            identities,
            by=by,
            source=source,
        )
        if owner is not None:
            Customer.objects.filter(pk=customer.pk).update(owner=owner)
            customer.owner = owner
        AccountProfile.objects.create(
            customer=customer,
            parent=parent,
            team_id=data.team_id,
            in_pool=data.in_pool and owner is None,
            last_activity_at=timezone.now(),
        )
        if data.in_pool and owner is None:
            PoolEvent.objects.create(account=customer, kind=PoolEvent.Kind.ADDED, reason="created")
        audit.record_event(
            audit.CREATE,
            actor=by,
            target=customer,
            detail={"sales": "account", "duplicates_confirmed": [h.customer_id for h in hits]},
        )
    return customer


def _check_team(team_id: int | None) -> None:
    if team_id is not None and not Team.objects.filter(pk=team_id).exists():
        raise ValidationError(
            f"team_id {team_id}: no such team; pick one listed under Sales › Teams or leave it out"
        )


def _get_parent(parent_id: int | None, *, by: Actor) -> Customer | None:
    if parent_id is None:
        return None
    parent = Customer.objects.filter(pk=parent_id, kind=Customer.Kind.COMPANY).first()
    if parent is None or (
        not is_owner_visible(by, parent.owner_id) and parent.owner_id is not None
    ):
        raise ValidationError(f"parent_id {parent_id}: no such company account")
    return parent


def get_profile(account: Customer) -> AccountProfile:
    """Return the account's sales profile, creating an empty one for a customer without it."""
    profile, _created = AccountProfile.objects.get_or_create(customer=account)
    return profile


def update_account(account: Customer, *, by: Actor, **changes: Any) -> Customer:
    """Change an account's hierarchy or team (profile fields: parent_id, team_id)."""
    profile = get_profile(account)
    if "parent_id" in changes:
        parent = _get_parent(changes["parent_id"], by=by)
        # A company cannot sit below itself, directly or through its branches.
        node = parent
        while node is not None:
            if node.pk == account.pk:
                raise ValidationError("parent_id: a company cannot be its own parent or branch")
            parent_id = (
                AccountProfile.objects.filter(customer=node)
                .values_list("parent_id", flat=True)
                .first()
            )
            node = Customer.objects.filter(pk=parent_id).first() if parent_id else None
        profile.parent = parent
    if "team_id" in changes:
        team_id = changes["team_id"]
        _check_team(team_id)
        profile.team_id = team_id
    with transaction.atomic():
        profile.save()
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=account,
            detail={"sales": "account", "fields": sorted(changes)},
        )
    return account


def _check_contact_allowed(account: Customer, contact: Customer, *, by: Actor) -> None:
    """Refuse a contact who belongs to an account of a rep outside the user's scope."""
    owners = get_visible_owner_ids(by)
    if owners is None:
        return
    if contact.owner_id is not None and contact.owner_id not in owners:
        raise ValidationError(
            f"contact #{contact.pk} belongs to another rep's account; ask them or your manager "
            "to hand it over"
        )
    others = (
        CompanyContact.objects.filter(contact=contact)
        .exclude(company=account)
        .exclude(company__owner__isnull=True)
        .exclude(company__owner__in=owners)
    )
    if others.exists():
        raise ValidationError(
            f"contact #{contact.pk} belongs to another rep's account; ask them or your manager "
            "to hand it over"
        )


def add_contact(
    account: Customer,
    contact: Customer,
    *,
    by: Actor,
    title: str = "",
    role: str = "",
    is_primary: bool = False,
) -> CompanyContact:
    """Link a person to a company account with their job title and buying role."""
    if account.kind != Customer.Kind.COMPANY:
        raise ValidationError(f"account #{account.pk} is a person; contacts belong to companies")
    if contact.kind != Customer.Kind.PERSON:
        raise ValidationError(f"contact #{contact.pk} is a company; a contact is a person")
    if role and role not in BuyingRole.Role.values:
        raise ValidationError(f"role {role!r}: use one of {', '.join(BuyingRole.Role.values)}")
    _check_contact_allowed(account, contact, by=by)
    with transaction.atomic(), audit.acting_as(by):
        link, _created = CompanyContact.objects.update_or_create(
            company=account, contact=contact, defaults={"title": title, "is_primary": is_primary}
        )
        if role:
            BuyingRole.objects.update_or_create(link=link, defaults={"role": role})
        if contact.owner_id is None and account.owner_id is not None:
            Customer.objects.filter(pk=contact.pk).update(owner=account.owner_id)
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=account,
            detail={"sales": "contact", "contact": contact.pk, "role": role},
        )
    return link


def create_contact(
    account: Customer,
    *,
    by: Actor,
    name: str,
    phone: str = "",
    email: str = "",
    title: str = "",
    role: str = "",
    is_primary: bool = False,
) -> CompanyContact:
    """Create a person as a contact of the account (owned by the account's owner)."""
    identities = []
    if phone:
        identities.append(IdentityInput("phone", phone))
    if email:
        identities.append(IdentityInput("email", email))
    with transaction.atomic():
        person = create_customer(
            {"kind": Customer.Kind.PERSON, "name": name}, identities, by=by, source="backoffice"
        )
        if account.owner_id is not None:
            Customer.objects.filter(pk=person.pk).update(owner=account.owner_id)
            person.owner_id = account.owner_id
        return add_contact(account, person, by=by, title=title, role=role, is_primary=is_primary)


# --- pipelines and deals ------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    name: str
    probability: int
    forecast_category: str = Stage.Forecast.PIPELINE
    is_won: bool = False
    is_lost: bool = False


DEFAULT_STAGES = (
    StageSpec("Qualification", 10),
    StageSpec("Needs analysis", 25),
    StageSpec("Proposal", 50, Stage.Forecast.BEST_CASE),
    StageSpec("Negotiation", 75, Stage.Forecast.COMMIT),
    StageSpec("Won", 100, Stage.Forecast.CLOSED, is_won=True),
    StageSpec("Lost", 0, Stage.Forecast.OMITTED, is_lost=True),
)


def create_pipeline(
    *, name: str, stages: Iterable[StageSpec] = DEFAULT_STAGES, by: Actor, position: int = 0
) -> Pipeline:
    """Create a pipeline with its ordered stages (one won and one lost stage at least)."""
    specs = list(stages)
    if not any(s.is_won for s in specs) or not any(s.is_lost for s in specs):
        raise ValidationError("stages: a pipeline needs a won stage and a lost stage")
    for spec in specs:
        if not 0 <= spec.probability <= 100:
            raise ValidationError(f"stage {spec.name!r}: probability must be 0 to 100")
    if Pipeline.objects.filter(name=name).exists():
        raise ValidationError(f"name: a pipeline named {name!r} exists; choose another name")
    with transaction.atomic():
        pipeline = Pipeline.objects.create(name=name, position=position)
        Stage.objects.bulk_create(
            Stage(
                pipeline=pipeline,
                name=s.name,
                position=i,
                probability=s.probability,
                forecast_category=s.forecast_category,
                is_won=s.is_won,
                is_lost=s.is_lost,
            )
            for i, s in enumerate(specs)
        )
        audit.record_event(audit.CREATE, actor=by, target=pipeline, detail={"stages": len(specs)})
    return pipeline


def _status_of(stage: Stage) -> str:
    if stage.is_won:
        return Deal.Status.WON
    if stage.is_lost:
        return Deal.Status.LOST
    return Deal.Status.OPEN


def _check_deal_rules(
    *, stage: Stage, amount: Decimal | None, close_date: date, lost_reason: str, on: date
) -> None:
    """Refuse a deal state the business rules forbid, with a one-line message."""
    if stage.is_won and (amount is None or amount <= 0):
        raise ValidationError(
            f"amount: a deal moved to the won stage {stage.name!r} needs its amount; "
            "enter the amount first"
        )
    if stage.is_lost and not lost_reason.strip():
        raise ValidationError(
            f"lost_reason: say why the deal was lost to move it to {stage.name!r}"
        )
    if not stage.is_closed and close_date < on:
        raise ValidationError(
            f"close_date: {close_date.isoformat()} is in the past for an open deal; "
            "give the date you now expect it to close"
        )
    if amount is not None and amount < 0:
        raise ValidationError("amount: must not be negative")


@dataclass
class DealInput:
    name: str
    account_id: int
    stage_id: int
    close_date: date
    amount: Decimal | None = None
    currency: str = "CNY"
    probability: int | None = None
    owner_id: int | None = None
    contact_ids: list[int] = field(default_factory=list)
    products: list[tuple[int, int, Decimal | None]] = field(default_factory=list)
    source: str = ""
    source_campaign_id: int | None = None
    lost_reason: str = ""
    external_ref: str = ""


def _visible_account(account_id: int, *, by: Actor) -> Customer:
    account = Customer.objects.filter(pk=account_id).first()
    if account is None or not is_owner_visible(by, account.owner_id):
        raise ValidationError(f"account_id {account_id}: no such account of yours")
    return account


def _set_contacts(deal: Deal, contact_ids: Iterable[int], *, by: Actor) -> None:
    contacts = list(Customer.objects.filter(pk__in=set(contact_ids)))
    missing = set(contact_ids) - {c.pk for c in contacts}
    if missing:
        raise ValidationError(f"contact_ids: no contact #{min(missing)}")
    for contact in contacts:
        _check_contact_allowed(deal.account, contact, by=by)
    deal.contacts.set(contacts)


def _set_products(deal: Deal, products: Iterable[tuple[int, int, Decimal | None]]) -> None:
    lines = list(products)
    known = {p.pk: p for p in Product.objects.filter(pk__in={p for p, _q, _u in lines})}
    deal.lines.all().delete()
    for product_id, quantity, unit_price in lines:
        product = known.get(product_id)
        if product is None:
            raise ValidationError(f"products: no product #{product_id}")
        if quantity < 1:
            raise ValidationError(f"products: quantity of product #{product_id} must be 1 or more")
        DealProduct.objects.create(
            deal=deal,
            product=product,
            quantity=quantity,
            unit_price=product.price if unit_price is None else unit_price,
        )


def create_deal(data: DealInput, *, by: Actor, on: date | None = None) -> Deal:
    """Create a deal in a stage of a pipeline, with its contacts and products."""
    account = _visible_account(data.account_id, by=by)
    stage = Stage.objects.select_related("pipeline").filter(pk=data.stage_id).first()
    if stage is None:
        raise ValidationError(f"stage_id {data.stage_id}: no such stage")
    if data.probability is not None and not 0 <= data.probability <= 100:
        raise ValidationError("probability: must be 0 to 100")
    _check_deal_rules(
        stage=stage,
        amount=data.amount,
        close_date=data.close_date,
        lost_reason=data.lost_reason,
        on=on or today(),
    )
    owner_id = data.owner_id or getattr(get_user_or_none(by), "pk", None) or account.owner_id
    if owner_id is not None and not is_owner_visible(by, owner_id):
        raise ValidationError(f"owner_id {owner_id}: you may give deals only to your team")
    now = timezone.now()
    status = _status_of(stage)
    with transaction.atomic():
        team_id = (
            AccountProfile.objects.filter(customer=account)
            .values_list("team_id", flat=True)
            .first()
        )
        deal = Deal.objects.create(
            name=data.name.strip() or account.name,
            account=account,
            pipeline=stage.pipeline,
            stage=stage,
            status=status,
            amount=data.amount,
            currency=data.currency.upper()[:3] or "CNY",
            close_date=data.close_date,
            probability=data.probability,
            owner_id=owner_id,
            team_id=team_id,
            source=data.source,
            source_campaign_id=data.source_campaign_id,
            lost_reason=data.lost_reason,
            external_ref=data.external_ref,
            stage_entered_at=now,
            closed_at=now if status != Deal.Status.OPEN else None,
        )
        _set_contacts(deal, data.contact_ids, by=by)
        _set_products(deal, data.products)
        DealStageChange.objects.create(
            deal=deal,
            to_stage=stage,
            changed_at=now,
            amount=deal.amount,
            close_date=deal.close_date,
            changed_by=_username(by),
        )
        audit.record_event(audit.CREATE, actor=by, target=deal, detail={"stage": stage.pk})
    return deal


def move_deal(
    deal: Deal,
    stage: Stage,
    *,
    by: Actor,
    lost_reason: str | None = None,
    amount: Decimal | None = None,
    close_date: date | None = None,
    on: date | None = None,
    at: datetime | None = None,
) -> Deal:
    """Move a deal to another stage of its pipeline; refused moves change nothing."""
    if stage.pipeline_id != deal.pipeline_id:
        raise ValidationError(
            f"stage {stage.name!r} belongs to another pipeline; move the deal within "
            f"{deal.pipeline.name!r}"
        )
    new_amount = deal.amount if amount is None else amount
    new_close = deal.close_date if close_date is None else close_date
    reason = deal.lost_reason if lost_reason is None else lost_reason
    _check_deal_rules(
        stage=stage, amount=new_amount, close_date=new_close, lost_reason=reason, on=on or today()
    )
    if stage.pk == deal.stage_id and new_amount == deal.amount and new_close == deal.close_date:
        return deal
    now = at or timezone.now()
    previous, entered = deal.stage, deal.stage_entered_at
    previous_close = deal.close_date
    with transaction.atomic():
        deal.stage = stage
        deal.status = _status_of(stage)
        deal.amount = new_amount
        deal.close_date = new_close
        deal.lost_reason = reason if stage.is_lost else deal.lost_reason
        if stage.pk != previous.pk:
            deal.stage_entered_at = now
        deal.closed_at = now if deal.status != Deal.Status.OPEN else None
        deal.save()
        DealStageChange.objects.create(
            deal=deal,
            from_stage=previous,
            to_stage=stage,
            changed_at=now,
            days_in_previous=(now - entered).total_seconds() / 86400 if entered else None,
            amount=deal.amount,
            close_date=deal.close_date,
            previous_close_date=previous_close if previous_close != deal.close_date else None,
            changed_by=_username(by),
        )
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=deal,
            detail={"from_stage": previous.pk, "to_stage": stage.pk, "status": deal.status},
        )
    return deal


DEAL_FIELDS = {
    "name",
    "amount",
    "currency",
    "close_date",
    "probability",
    "source",
    "source_campaign_id",
}


def update_deal(deal: Deal, changes: dict[str, Any], *, by: Actor, on: date | None = None) -> Deal:
    """Change a deal's fields; a new close date is kept as a slip in the history."""
    unknown = (
        set(changes)
        - DEAL_FIELDS
        - {"stage_id", "lost_reason", "owner_id", "contact_ids", "products"}
    )
    if unknown:
        raise ValidationError(f"unknown deal field(s): {', '.join(sorted(unknown))}")
    if "stage_id" in changes or "lost_reason" in changes:
        stage = deal.stage
        if changes.get("stage_id") is not None:
            found = Stage.objects.filter(pk=changes["stage_id"]).first()
            if found is None:
                raise ValidationError(f"stage_id {changes['stage_id']}: no such stage")
            stage = found
        with transaction.atomic():
            move_deal(
                deal,
                stage,
                by=by,
                lost_reason=changes.get("lost_reason"),
                amount=changes.get("amount"),
                close_date=changes.get("close_date"),
                on=on,
            )
            rest = {
                k: v
                for k, v in changes.items()
                if k not in {"stage_id", "lost_reason", "amount", "close_date"}
            }
            return update_deal(deal, rest, by=by, on=on) if rest else deal
    if changes.get("probability") is not None and not 0 <= changes["probability"] <= 100:
        raise ValidationError("probability: must be 0 to 100")
    amount = changes.get("amount", deal.amount)
    close = changes.get("close_date", deal.close_date)
    if close is None:
        raise ValidationError("close_date: a deal needs an expected close date")
    _check_deal_rules(
        stage=deal.stage,
        amount=amount,
        close_date=close,
        lost_reason=deal.lost_reason,
        on=on or today(),
    )
    previous_close = deal.close_date
    with transaction.atomic():
        for name in DEAL_FIELDS & set(changes):
            setattr(deal, name, changes[name])
        if "owner_id" in changes:
            owner_id = changes["owner_id"]
            if owner_id is not None and not is_owner_visible(by, owner_id):
                raise ValidationError(f"owner_id {owner_id}: you may give deals only to your team")
            deal.owner_id = owner_id
        deal.full_clean(exclude=["account", "pipeline", "stage", "owner", "team", "contacts"])
        deal.save()
        if "contact_ids" in changes:
            _set_contacts(deal, changes["contact_ids"], by=by)
        if "products" in changes:
            _set_products(deal, changes["products"])
        if deal.close_date != previous_close:
            DealStageChange.objects.create(
                deal=deal,
                from_stage=deal.stage,
                to_stage=deal.stage,
                amount=deal.amount,
                close_date=deal.close_date,
                previous_close_date=previous_close,
                changed_by=_username(by),
                days_in_previous=None,
            )
        audit.record_event(audit.CHANGE, actor=by, target=deal, detail={"fields": sorted(changes)})
    return deal


def delete_deal(deal: Deal, *, by: Actor) -> None:
    """Delete a deal with its history (the audit trail keeps that it existed)."""
    with transaction.atomic():
        audit.record_event(audit.DELETE, actor=by, target=deal, detail={"name_len": len(deal.name)})
        deal.delete()


# --- activities and tasks ---------------------------------------------------------------


@dataclass
class ActivityInput:
    kind: str
    subject: str
    occurred_at: datetime | None = None
    notes: str = ""
    location: str = ""
    duration_minutes: int | None = None
    account_id: int | None = None
    contact_id: int | None = None
    deal_id: int | None = None
    external_ref: str = ""


def log_activity(data: ActivityInput, *, by: Actor, owner: Any = None) -> Activity:
    """Record a call, meeting, visit, email or note; it keeps the account out of the pool."""
    if data.kind not in Activity.Kind.values:
        raise ValidationError(f"kind {data.kind!r}: use one of {', '.join(Activity.Kind.values)}")
    if data.kind == Activity.Kind.VISIT and not data.location.strip():
        raise ValidationError("location: a visit needs the place it happened")
    if not data.subject.strip():
        raise ValidationError("subject: say what the activity was about")
    deal = None
    account = None
    if data.deal_id is not None:
        deal = Deal.objects.filter(pk=data.deal_id).select_related("account").first()
        if deal is None or not is_owner_visible(by, deal.owner_id):
            raise ValidationError(f"deal_id {data.deal_id}: no such deal of yours")
        account = deal.account
    if data.account_id is not None:
        account = _visible_account(data.account_id, by=by)
    contact = None
    if data.contact_id is not None:
        contact = Customer.objects.filter(pk=data.contact_id, kind=Customer.Kind.PERSON).first()
        if contact is None or (not is_owner_visible(by, contact.owner_id) and contact.owner_id):
            raise ValidationError(f"contact_id {data.contact_id}: no such contact of yours")
        if account is None:
            link = CompanyContact.objects.filter(contact=contact).first()
            account = link.company if link else None
        if account is not None:
            _check_contact_allowed(account, contact, by=by)
    if account is None and contact is None:
        raise ValidationError("an activity needs an account, a contact or a deal")
    occurred = data.occurred_at or timezone.now()
    with transaction.atomic():
        activity = Activity.objects.create(
            kind=data.kind,
            subject=data.subject.strip()[:200],
            notes=data.notes,
            occurred_at=occurred,
            duration_minutes=data.duration_minutes,
            location=data.location.strip()[:200],
            account=account,
            contact=contact,
            deal=deal,
            owner=cast(Any, owner if owner is not None else get_user_or_none(by)),
            external_ref=data.external_ref,
        )
        if account is not None:
            profile = get_profile(account)
            if profile.last_activity_at is None or profile.last_activity_at < occurred:
                AccountProfile.objects.filter(pk=profile.pk).update(
                    last_activity_at=occurred, warned_at=None
                )
        audit.record_event(
            audit.CREATE,
            actor=by,
            target=activity,
            detail={"kind": data.kind, "account": account.pk if account else None},
        )
    return activity


def create_task(
    *,
    by: Actor,
    title: str,
    due_at: datetime,
    owner: Any = None,
    remind_at: datetime | None = None,
    recurrence: str = "",
    notes: str = "",
    account_id: int | None = None,
    deal_id: int | None = None,
) -> Task:
    """Create a task (optionally recurring, with a reminder) for a rep."""
    owner = owner if owner is not None else get_user_or_none(by)
    if owner is None:
        raise ValidationError("owner: a task needs the rep who does it")
    if not is_owner_visible(by, owner.pk):
        raise ValidationError(f"owner {owner.get_username()}: you may give tasks only to your team")
    if recurrence not in Task.Recurrence.values:
        raise ValidationError(f"recurrence {recurrence!r}: use daily, weekly, monthly or nothing")
    if remind_at is not None and remind_at > due_at:
        raise ValidationError("remind_at: the reminder must come before the due time")
    if not title.strip():
        raise ValidationError("title: say what is to be done")
    account = _visible_account(account_id, by=by) if account_id is not None else None
    deal = None
    if deal_id is not None:
        deal = Deal.objects.filter(pk=deal_id).first()
        if deal is None or not is_owner_visible(by, deal.owner_id):
            raise ValidationError(f"deal_id {deal_id}: no such deal of yours")
        account = account or deal.account
    with transaction.atomic():
        task = Task.objects.create(
            title=title.strip()[:200],
            notes=notes,
            due_at=due_at,
            remind_at=remind_at,
            recurrence=recurrence,
            owner=owner,
            account=account,
            deal=deal,
        )
        audit.record_event(audit.CREATE, actor=by, target=task, detail={"owner": owner.pk})
    return task


def add_months(moment: datetime, months: int) -> datetime:
    """Return the same day and time `months` later (the 31st becomes the month's last day)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_occurrence(moment: datetime, recurrence: str, after: datetime | None = None) -> datetime:
    """Return when a recurring task comes due again: the first occurrence after `after`.

    A task done late does not bring back the occurrences it missed (a daily call done three
    days late is next due tomorrow, not three days ago); months count from the first due day,
    so the 31st stays the month's last day.
    """
    after = after or moment
    if recurrence in (Task.Recurrence.DAILY, Task.Recurrence.WEEKLY):
        step = timedelta(days=1 if recurrence == Task.Recurrence.DAILY else 7)
        missed = max(int((after - moment) / step), 0)
        due = moment + step * (missed + 1)
        return due if due > after else due + step
    if recurrence == Task.Recurrence.MONTHLY:
        months = 1
        while (due := add_months(moment, months)) <= after:
            months += 1
        return due
    raise ValueError(f"not a recurrence: {recurrence!r}")


def complete_task(task: Task, *, by: Actor, at: datetime | None = None) -> Task | None:
    """Mark a task done; a recurring one gets its next occurrence, which is returned."""
    if task.done_at is not None:
        return None
    now = at or timezone.now()
    with transaction.atomic():
        updated = Task.objects.filter(pk=task.pk, done_at__isnull=True).update(done_at=now)
        task.done_at = now
        following = None
        if updated and task.recurrence:
            due = next_occurrence(task.due_at, task.recurrence, after=max(now, task.due_at))
            remind = None
            if task.remind_at is not None:
                remind = due - (task.due_at - task.remind_at)
            following = Task.objects.create(
                title=task.title,
                notes=task.notes,
                due_at=due,
                remind_at=remind,
                recurrence=task.recurrence,
                owner_id=task.owner_id,
                account_id=task.account_id,
                deal_id=task.deal_id,
            )
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=task,
            detail={"done": True, "next": getattr(following, "pk", None)},
        )
    return following


def send_due_reminders(*, now: datetime | None = None, by: Actor) -> int:
    """Email each rep the reminders that are due and not sent yet; return how many were sent.

    Each task is marked before its mail is sent, in its own transaction, so two workers never
    send one twice. A mail the server refuses or cannot take is unmarked and tried again at
    the next run; the reminder shows in the back office either way.
    """
    import smtplib  # noqa: PLC0415 -- mail only when reminders are due

    from django.core.mail import send_mail  # noqa: PLC0415

    now = now or timezone.now()
    sent = 0
    due = Task.objects.filter(
        done_at__isnull=True, reminded_at__isnull=True, remind_at__lte=now
    ).select_related("owner", "account")
    for task in due.iterator():
        with transaction.atomic():
            if not Task.objects.filter(pk=task.pk, reminded_at__isnull=True).update(
                reminded_at=now
            ):
                continue
            audit.record_event(audit.CHANGE, actor=by, target=task, detail={"reminded": True})
        if not task.owner.email:
            continue
        local = timezone.localtime(task.due_at)
        about = f"{task.account.name}\n" if task.account is not None else ""
        try:
            send_mail(
                subject=f"[Kequn] {task.title}",
                message=f"{task.title}\n{about}{local:%Y-%m-%d %H:%M}\n\n{task.notes}",
                from_email=None,
                recipient_list=[task.owner.email],
            )
        except (smtplib.SMTPException, OSError) as exc:
            Task.objects.filter(pk=task.pk, reminded_at=now).update(reminded_at=None)
            logger.warning("reminder of task %s not sent, retried next run: %s", task.pk, exc)
            continue
        sent += 1
    return sent


def save_task(task: Task, *, by: Actor) -> Task | None:
    """Save a task a back-office form has changed; return the next occurrence if one was made.

    A new reminder time is sent again, and a task marked done there repeats like one
    completed with the "Mark done" action.
    """
    before = Task.objects.filter(pk=task.pk).values("remind_at", "done_at").first()
    if before is None:
        save_record(task, by=by)
        return None
    if before["remind_at"] != task.remind_at:
        task.reminded_at = None
    done_at = task.done_at
    if before["done_at"] is None and done_at is not None:
        with transaction.atomic():
            task.done_at = None
            save_record(task, by=by)
            return complete_task(task, by=by, at=done_at)
    save_record(task, by=by)
    return None


# --- lead pool ----------------------------------------------------------------------------


def get_pool_settings() -> PoolSettings:
    """Return the lead pool's rules (the defaults until an operator changes them)."""
    settings_row = PoolSettings.objects.order_by("pk").first()
    return settings_row or PoolSettings(idle_days=30, warn_days=7, claim_limit=50)


def count_claimed(user: Any) -> int:
    """Return how many accounts claimed from the pool the rep holds now."""
    return AccountProfile.objects.filter(customer__owner=user, claimed_at__isnull=False).count()


def put_in_pool(
    account: Customer,
    *,
    by: Actor,
    reason: str = "",
    kind: str = PoolEvent.Kind.RELEASED,
    at: datetime | None = None,
) -> None:
    """Take an account from its owner and put it in the lead pool."""
    with transaction.atomic():
        profile = AccountProfile.objects.select_for_update().get(pk=get_profile(account).pk)
        previous = account.owner_id
        Customer.objects.filter(pk=account.pk).update(owner=None)
        account.owner_id = None
        profile.in_pool = True
        profile.claimed_at = None
        profile.warned_at = None
        profile.save()
        PoolEvent.objects.create(
            account=account,
            kind=kind,
            user_id=previous,
            reason=reason[:200],
            at=at or timezone.now(),
        )
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=account,
            detail={"pool": kind, "previous_owner": previous},
        )


def claim_account(
    account: Customer, *, by: Actor, user: Any = None, at: datetime | None = None
) -> Customer:
    """Give a pool account to a rep; refused over the rep's claim limit."""
    user = user if user is not None else get_user_or_none(by)
    if user is None:
        raise ValidationError("a claim needs the rep who takes the account")
    rules = get_pool_settings()
    now = at or timezone.now()
    with transaction.atomic():
        profile = AccountProfile.objects.select_for_update().filter(customer=account).first()
        if profile is None or not profile.in_pool:
            raise ValidationError(f"account #{account.pk} is not in the lead pool")
        held = count_claimed(user)
        if held >= rules.claim_limit:
            raise ValidationError(
                f"claim limit reached: you hold {held} accounts from the pool "
                f"(limit {rules.claim_limit}); release one first"
            )
        Customer.objects.filter(pk=account.pk).update(owner=user)
        account.owner = user
        profile.in_pool = False
        profile.claimed_at = now
        profile.last_activity_at = now  # the idle clock starts at the claim
        profile.warned_at = None
        profile.save()
        PoolEvent.objects.create(account=account, kind=PoolEvent.Kind.CLAIMED, user=user, at=now)
        audit.record_event(
            audit.CHANGE, actor=by, target=account, detail={"pool": "claimed", "owner": user.pk}
        )
    return account


@dataclass
class ReclaimResult:
    warned: list[int] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)


def reclaim_idle_accounts(*, by: Actor, now: datetime | None = None) -> ReclaimResult:
    """Return owned accounts idle past the limit to the pool, and warn owners before.

    Idempotent: an account is warned once per idle spell and returned once; a re-run the
    same day finds nothing left to do.
    """
    rules = get_pool_settings()
    now = now or timezone.now()
    result = ReclaimResult()
    idle_since = now - timedelta(days=rules.idle_days)
    warn_since = now - timedelta(days=max(rules.idle_days - rules.warn_days, 0))
    owned = AccountProfile.objects.filter(in_pool=False, customer__owner__isnull=False)
    for profile in owned.filter(last_activity_at__lte=idle_since).select_related("customer"):
        put_in_pool(
            profile.customer,
            by=by,
            reason=f"no activity for {rules.idle_days} days",
            kind=PoolEvent.Kind.RECLAIMED,
            at=now,
        )
        result.returned.append(profile.customer_id)
    to_warn = owned.filter(
        last_activity_at__lte=warn_since, last_activity_at__gt=idle_since, warned_at__isnull=True
    ).select_related("customer")
    for profile in to_warn:
        last, owner_id = profile.last_activity_at, profile.customer.owner_id
        if last is None or owner_id is None:  # excluded by the query; for the type checker
            continue
        with transaction.atomic():
            if not AccountProfile.objects.filter(pk=profile.pk, warned_at__isnull=True).update(
                warned_at=now
            ):
                continue
            returns_on = timezone.localdate(last + timedelta(days=rules.idle_days))
            PoolEvent.objects.create(
                account=profile.customer,
                kind=PoolEvent.Kind.WARNED,
                user_id=profile.customer.owner_id,
                at=now,
                reason=f"returns to the pool on {returns_on.isoformat()} without an activity",
            )
            # Reminded at once: the reminder job emails the owner within a quarter of an hour.
            Task.objects.create(
                title=f"Follow up {profile.customer.name} before it returns to the pool",
                notes=f"No activity since {timezone.localdate(last).isoformat()}: the account "
                f"returns to the lead pool on {returns_on.isoformat()} unless an activity is "
                "logged on it.",
                due_at=last + timedelta(days=rules.idle_days),
                remind_at=now,
                owner_id=owner_id,
                account=profile.customer,
            )
        result.warned.append(profile.customer_id)
    return result


def require_owner_scope(by: Actor, owner_id: int | None) -> None:
    """Raise PermissionDenied unless rows of this owner are in the user's scope."""
    if not is_owner_visible(by, owner_id):
        raise PermissionDenied("outside your accounts")


def scope_filter_for(by: Actor) -> Q:
    """Return the condition limiting deals to the user's scope (everything when unlimited)."""
    owners = get_visible_owner_ids(by)
    return Q() if owners is None else Q(owner__in=owners)


def save_deal(deal: Deal, *, by: Actor, on: date | None = None) -> Deal:
    """Save a deal a validated back-office form has set, applying the same rules and history."""
    stored = Deal.objects.filter(pk=deal.pk).first() if deal.pk else None
    deal.pipeline_id = deal.stage.pipeline_id
    deal.status = _status_of(deal.stage)
    _check_deal_rules(
        stage=deal.stage,
        amount=deal.amount,
        close_date=deal.close_date,
        lost_reason=deal.lost_reason,
        on=on or today(),
    )
    if not is_owner_visible(by, deal.owner_id):
        raise ValidationError("owner: you may give deals only to your team")
    now = timezone.now()
    with transaction.atomic():
        moved = stored is None or stored.stage_id != deal.stage_id
        if moved:
            deal.stage_entered_at = now
        deal.closed_at = (deal.closed_at or now) if deal.status != Deal.Status.OPEN else None
        deal.save()
        if stored is None or moved or stored.close_date != deal.close_date:
            DealStageChange.objects.create(
                deal=deal,
                from_stage_id=stored.stage_id if stored else None,
                to_stage=deal.stage,
                changed_at=now,
                days_in_previous=(now - stored.stage_entered_at).total_seconds() / 86400
                if stored and moved
                else None,
                amount=deal.amount,
                close_date=deal.close_date,
                previous_close_date=stored.close_date
                if stored and stored.close_date != deal.close_date
                else None,
                changed_by=_username(by),
            )
        audit.record_event(audit.CREATE if stored is None else audit.CHANGE, actor=by, target=deal)
    return deal


def save_record(record: Any, *, by: Actor) -> Any:
    """Save a sales row a validated back-office form has set (team, pipeline, quota...)."""
    created = record.pk is None or getattr(record._state, "adding", False)
    with transaction.atomic():
        record.save()
        audit.record_event(audit.CREATE if created else audit.CHANGE, actor=by, target=record)
    return record


def delete_record(record: Any, *, by: Actor) -> None:
    """Delete a sales row from the back office, on the audit trail."""
    with transaction.atomic():
        audit.record_event(audit.DELETE, actor=by, target=record)
        record.delete()
