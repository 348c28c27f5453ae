"""Sales API: accounts, contacts, deals, pipelines, activities and tasks under /api/v1/.

Every list is cursor-paged like the rest of the API; rows outside the user's scope (a rep's
own, a manager's team) answer 404 like missing ones; contacts' phones, emails and birthdays
are masked by role as customers' are, and every unmasked view is on the audit trail.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from kequn.apiutils import BoundedDateTime, ObjectId, Page, check_perm, paginate
from kequn.customers.models import Customer
from kequn.sales import selectors, services, winmodel
from kequn.sales.access import scope_accounts, scope_activities, scope_owned
from kequn.sales.models import AccountProfile, Activity, Deal, Pipeline, Task, WinModel
from kequn.security.masking import (
    BIRTHDAY,
    EMAIL,
    PHONE,
    get_unmasked_groups,
    mask_birthday,
    mask_identity_for,
)
from kequn.security.permissions import record_personal_view


def _viewer(request: HttpRequest) -> Any:
    return getattr(request, "auth", None) or request.user


def _groups(context: dict | None) -> frozenset[str]:
    request = (context or {}).get("request")
    return get_unmasked_groups(_viewer(request)) if request is not None else frozenset()


def _identity(customer: Customer, kind: str) -> str | None:
    for identity in customer.identities.all():
        if identity.kind == kind:
            return identity.value
    return None


# --- accounts -------------------------------------------------------------------------------

accounts_router = Router(tags=["sales"])


class AccountIn(Schema):
    name: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    phone: str = Field("", max_length=40)
    credit_code: str = Field("", max_length=30, description="统一社会信用代码 (18 characters)")
    domain: str = Field("", max_length=200)
    industry: str = Field("", max_length=100)
    province: str = Field("", max_length=50)
    city: str = Field("", max_length=50)
    parent_id: ObjectId | None = None
    team_id: ObjectId | None = None
    in_pool: bool = False
    confirm: bool = Field(
        False, description="create it even though a possible duplicate was reported"
    )


class AccountPatch(Schema):
    parent_id: ObjectId | None = None
    team_id: ObjectId | None = None


class AccountOut(Schema):
    id: int
    name: str
    industry: str
    province: str
    city: str
    owner_id: int | None
    parent_id: int | None = None
    team_id: int | None = None
    in_pool: bool = False
    last_activity_at: datetime | None = None

    @staticmethod
    def _profile(obj: Customer) -> AccountProfile | None:
        return getattr(obj, "sales_profile", None) if hasattr(obj, "sales_profile") else None

    @staticmethod
    def resolve_parent_id(obj: Customer) -> int | None:
        profile = AccountOut._profile(obj)
        return profile.parent_id if profile else None

    @staticmethod
    def resolve_team_id(obj: Customer) -> int | None:
        profile = AccountOut._profile(obj)
        return profile.team_id if profile else None

    @staticmethod
    def resolve_in_pool(obj: Customer) -> bool:
        profile = AccountOut._profile(obj)
        return bool(profile and profile.in_pool)

    @staticmethod
    def resolve_last_activity_at(obj: Customer) -> datetime | None:
        profile = AccountOut._profile(obj)
        return profile.last_activity_at if profile else None


class DuplicateOut(Schema):
    duplicates: list[str]


def _accounts(request: HttpRequest) -> Any:
    rows = Customer.objects.filter(kind=Customer.Kind.COMPANY).select_related("sales_profile")
    return scope_accounts(_viewer(request), rows)


@accounts_router.get("", response=Page[AccountOut], summary="List company accounts")
def list_accounts(
    request: HttpRequest,
    q: str | None = Query(None, max_length=100),
    in_pool: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "customers.view_customer")
    rows = _accounts(request)
    if in_pool is not None:
        rows = rows.filter(sales_profile__in_pool=in_pool)
    if q:
        rows = rows.filter(name__icontains=q)
    return paginate(rows, cursor, limit)


@accounts_router.get("/pool", response=Page[AccountOut], summary="List the lead pool")
def list_pool(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "sales.view_accountprofile")
    rows = Customer.objects.filter(sales_profile__in_pool=True).select_related("sales_profile")
    return paginate(rows, cursor, limit)


@accounts_router.post(
    "/check", response=DuplicateOut, summary="Check for duplicate accounts (撞单) before creating"
)
def check_account(request: HttpRequest, payload: AccountIn):
    check_perm(request, "customers.add_customer")
    data = services.AccountInput(**payload.dict(exclude={"confirm"}))
    hits = services.find_duplicate_accounts(data, by=_viewer(request))
    return {"duplicates": [hit.describe() for hit in hits]}


@accounts_router.post("", response={201: AccountOut}, summary="Create a company account")
def create_account(request: HttpRequest, payload: AccountIn):
    check_perm(request, "customers.add_customer")
    values = payload.dict()
    confirm = values.pop("confirm")
    account = services.create_account(
        services.AccountInput(**values), by=_viewer(request), confirm=confirm, source="api"
    )
    return Status(201, Customer.objects.select_related("sales_profile").get(pk=account.pk))


@accounts_router.get("/{int:account_id}", response=AccountOut, summary="Read an account")
def get_account(request: HttpRequest, account_id: ObjectId):
    check_perm(request, "customers.view_customer")
    return get_object_or_404(_accounts(request), pk=account_id)


@accounts_router.patch("/{int:account_id}", response=AccountOut, summary="Change an account")
def update_account(request: HttpRequest, account_id: ObjectId, payload: AccountPatch):
    check_perm(request, "sales.change_accountprofile")
    account = get_object_or_404(_accounts(request), pk=account_id)
    services.update_account(account, by=_viewer(request), **payload.dict(exclude_unset=True))
    return get_object_or_404(_accounts(request), pk=account_id)


@accounts_router.post(
    "/{int:account_id}/claim", response=AccountOut, summary="Claim an account from the lead pool"
)
def claim_account(request: HttpRequest, account_id: ObjectId):
    check_perm(request, "sales.change_accountprofile")
    account = get_object_or_404(Customer, pk=account_id, sales_profile__in_pool=True)
    services.claim_account(account, by=_viewer(request))
    return Customer.objects.select_related("sales_profile").get(pk=account_id)


# --- contacts ---------------------------------------------------------------------------------

contacts_router = Router(tags=["sales"])


class ContactIn(Schema):
    account_id: ObjectId
    name: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=254)
    title: str = Field("", max_length=100)
    role: Literal["decision", "influencer", "champion", "user", "gatekeeper", "other", ""] = ""
    is_primary: bool = False


class ContactOut(Schema):
    id: int
    name: str
    owner_id: int | None
    phone: str | None = None
    email: str | None = None
    birthday: str | None = None
    companies: list[dict[str, Any]] = Field(default_factory=list)

    @staticmethod
    def resolve_phone(obj: Customer, context) -> str | None:
        value = _identity(obj, "phone")
        return None if value is None else mask_identity_for(_groups(context), "phone", value)

    @staticmethod
    def resolve_email(obj: Customer, context) -> str | None:
        value = _identity(obj, "email")
        return None if value is None else mask_identity_for(_groups(context), "email", value)

    @staticmethod
    def resolve_birthday(obj: Customer, context) -> str | None:
        if obj.birthday is None:
            return None
        if BIRTHDAY in _groups(context):
            return obj.birthday.isoformat()
        return mask_birthday(obj.birthday)

    @staticmethod
    def resolve_companies(obj: Customer) -> list[dict[str, Any]]:
        return [
            {
                "account_id": link.company_id,
                "title": link.title,
                "is_primary": link.is_primary,
                "role": getattr(getattr(link, "buying_role", None), "role", ""),
            }
            for link in obj.company_links.all()
        ]


def _contacts(request: HttpRequest) -> Any:
    rows = Customer.objects.filter(company_links__isnull=False).distinct()
    rows = rows.prefetch_related("identities", "company_links__buying_role")
    return scope_accounts(_viewer(request), rows)


def _shown(request: HttpRequest, ids: list[int]) -> None:
    groups = get_unmasked_groups(_viewer(request)) & {PHONE, EMAIL, BIRTHDAY}
    record_personal_view(_viewer(request), ids, via="api", groups=groups)


@contacts_router.get("", response=Page[ContactOut], summary="List contacts of company accounts")
def list_contacts(
    request: HttpRequest,
    account_id: ObjectId | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "customers.view_companycontact")
    rows = _contacts(request)
    if account_id:
        rows = rows.filter(company_links__company_id=account_id)
    page = paginate(rows, cursor, limit)
    _shown(request, [c.pk for c in page["items"]])
    return page


@contacts_router.post("", response={201: ContactOut}, summary="Create a contact of an account")
def create_contact(request: HttpRequest, payload: ContactIn):
    check_perm(request, "customers.add_companycontact")
    account = get_object_or_404(_accounts(request), pk=payload.account_id)
    values = payload.dict(exclude={"account_id"})
    link = services.create_contact(account, by=_viewer(request), **values)
    contact = get_object_or_404(_contacts(request), pk=link.contact_id)
    _shown(request, [contact.pk])
    return Status(201, contact)


@contacts_router.get("/{int:contact_id}", response=ContactOut, summary="Read a contact")
def get_contact(request: HttpRequest, contact_id: ObjectId):
    check_perm(request, "customers.view_companycontact")
    contact = get_object_or_404(_contacts(request), pk=contact_id)
    _shown(request, [contact.pk])
    return contact


# --- pipelines ----------------------------------------------------------------------------

pipelines_router = Router(tags=["sales"])


class StageOut(Schema):
    id: int
    name: str
    position: int
    probability: int
    forecast_category: str
    is_won: bool
    is_lost: bool


class PipelineOut(Schema):
    id: int
    name: str
    position: int
    is_active: bool
    stages: list[StageOut]

    @staticmethod
    def resolve_stages(obj: Pipeline) -> list:
        return list(obj.stages.all())


@pipelines_router.get("", response=Page[PipelineOut], summary="List pipelines with their stages")
def list_pipelines(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "sales.view_pipeline")
    return paginate(Pipeline.objects.prefetch_related("stages"), cursor, limit)


@pipelines_router.get("/{int:pipeline_id}", response=PipelineOut, summary="Read a pipeline")
def get_pipeline(request: HttpRequest, pipeline_id: ObjectId):
    check_perm(request, "sales.view_pipeline")
    return get_object_or_404(Pipeline.objects.prefetch_related("stages"), pk=pipeline_id)


# --- deals ----------------------------------------------------------------------------------

deals_router = Router(tags=["sales"])


class DealLine(Schema):
    product_id: ObjectId
    quantity: int = Field(1, ge=1, le=1_000_000)
    unit_price: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)


class DealIn(Schema):
    name: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    account_id: ObjectId
    stage_id: ObjectId
    close_date: date = Field(..., ge=date(2000, 1, 1), le=date(2100, 12, 31))
    amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    currency: str = Field("CNY", pattern=r"^[A-Za-z]{3}$")
    probability: int | None = Field(None, ge=0, le=100)
    owner_id: ObjectId | None = None
    contact_ids: list[ObjectId] = Field(default_factory=list, max_length=100)
    products: list[DealLine] = Field(default_factory=list, max_length=200)
    source: str = Field("", max_length=50)
    source_campaign_id: ObjectId | None = None
    lost_reason: str = Field("", max_length=200)


class DealPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"\S")
    stage_id: ObjectId | None = None
    close_date: date | None = Field(None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")
    probability: int | None = Field(None, ge=0, le=100)
    owner_id: ObjectId | None = None
    contact_ids: list[ObjectId] | None = Field(None, max_length=100)
    source: str | None = Field(None, max_length=50)
    source_campaign_id: ObjectId | None = None
    lost_reason: str | None = Field(None, max_length=200)


class DealOut(Schema):
    id: int
    name: str
    account_id: int
    pipeline_id: int
    stage_id: int
    status: str
    amount: Decimal | None
    currency: str
    close_date: date
    probability: int
    probability_override: int | None
    weighted_amount: Decimal
    owner_id: int | None
    contact_ids: list[int]
    products: list[dict[str, Any]]
    source: str
    source_campaign_id: int | None
    lost_reason: str
    created_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None

    @staticmethod
    def resolve_probability(obj: Deal) -> int:
        return obj.get_probability()

    @staticmethod
    def resolve_probability_override(obj: Deal) -> int | None:
        return obj.probability

    @staticmethod
    def resolve_weighted_amount(obj: Deal) -> Decimal:
        return obj.weighted_amount.quantize(Decimal("0.01"))

    @staticmethod
    def resolve_contact_ids(obj: Deal) -> list[int]:
        return sorted(c.pk for c in obj.contacts.all())

    @staticmethod
    def resolve_products(obj: Deal) -> list[dict[str, Any]]:
        return [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
            }
            for line in obj.lines.all()
        ]


class DealFilters(Schema):
    pipeline_id: ObjectId | None = None
    stage_id: ObjectId | None = None
    owner_id: ObjectId | None = None
    account_id: ObjectId | None = None
    status: Literal["open", "won", "lost"] | None = None


def _deals(request: HttpRequest) -> Any:
    rows = Deal.objects.select_related("stage").prefetch_related("contacts", "lines")
    return scope_owned(_viewer(request), rows)


@deals_router.get("", response=Page[DealOut], summary="List deals (newest first)")
def list_deals(
    request: HttpRequest, filters: Query[DealFilters], cursor: str | None = None, limit: int = 50
):
    check_perm(request, "sales.view_deal")
    rows = _deals(request)
    for name, value in filters.dict(exclude_none=True).items():
        rows = rows.filter(**{name: value})
    return paginate(rows, cursor, limit)


def _lines(lines: list[DealLine] | None) -> list[tuple[int, int, Decimal | None]]:
    return [(line.product_id, line.quantity, line.unit_price) for line in lines or []]


@deals_router.post("", response={201: DealOut}, summary="Create a deal")
def create_deal(request: HttpRequest, payload: DealIn):
    check_perm(request, "sales.add_deal")
    values = payload.dict(exclude={"products"})
    deal = services.create_deal(
        services.DealInput(**values, products=_lines(payload.products)), by=_viewer(request)
    )
    return Status(201, _deals(request).get(pk=deal.pk))


@deals_router.get("/{int:deal_id}", response=DealOut, summary="Read a deal")
def get_deal(request: HttpRequest, deal_id: ObjectId):
    check_perm(request, "sales.view_deal")
    return get_object_or_404(_deals(request), pk=deal_id)


class WinProbabilityOut(Schema):
    deal_id: int
    probability: float
    source: Literal["model", "stage"]
    model_trained_at: datetime | None


@deals_router.get(
    "/{int:deal_id}/win-probability",
    response=WinProbabilityOut,
    summary="A deal's win probability (the win model's when one is in use, else the stage's)",
)
def get_deal_win_probability(request: HttpRequest, deal_id: ObjectId):
    check_perm(request, "sales.view_deal")
    deal = get_object_or_404(_deals(request).select_related("stage"), pk=deal_id)
    model = WinModel.objects.filter(is_used=True).first()
    from_model = model is not None and deal.status == Deal.Status.OPEN
    return {
        "deal_id": deal.pk,
        "probability": round(winmodel.get_win_probability(deal), 4),
        "source": "model" if from_model else "stage",
        "model_trained_at": model.trained_at if from_model and model else None,
    }


@deals_router.get(
    "/{int:deal_id}/history", response=list[dict[str, Any]], summary="A deal's stage changes"
)
def get_deal_history(request: HttpRequest, deal_id: ObjectId):
    check_perm(request, "sales.view_deal")
    deal = get_object_or_404(_deals(request), pk=deal_id)
    return list(
        deal.stage_changes.values(
            "changed_at",
            "from_stage_id",
            "to_stage_id",
            "days_in_previous",
            "amount",
            "close_date",
            "previous_close_date",
            "changed_by",
        )
    )


@deals_router.patch("/{int:deal_id}", response=DealOut, summary="Change or move a deal")
def update_deal(request: HttpRequest, deal_id: ObjectId, payload: DealPatch):
    check_perm(request, "sales.change_deal")
    deal = get_object_or_404(_deals(request), pk=deal_id)
    services.update_deal(deal, payload.dict(exclude_unset=True), by=_viewer(request))
    return _deals(request).get(pk=deal_id)


@deals_router.delete("/{int:deal_id}", response={204: None}, summary="Delete a deal")
def delete_deal(request: HttpRequest, deal_id: ObjectId):
    check_perm(request, "sales.delete_deal")
    services.delete_deal(get_object_or_404(_deals(request), pk=deal_id), by=_viewer(request))
    return Status(204, None)


@deals_router.get("/forecast", response=list[dict[str, Any]], summary="Forecast per month")
def get_forecast(
    request: HttpRequest,
    start: date | None = None,
    months: int = Query(3, ge=1, le=24),
    quarter: bool = False,
    owner_id: ObjectId | None = None,
    team_id: ObjectId | None = None,
):
    check_perm(request, "sales.view_deal")
    rows = selectors.get_forecast(
        _viewer(request),
        start=start or timezone.localdate(),
        months=months,
        by_quarter=quarter,
        owner_id=owner_id,
        team_id=team_id,
    )
    return [{**row.__dict__, "attainment": row.attainment} for row in rows]


# --- activities -------------------------------------------------------------------------------

activities_router = Router(tags=["sales"])


class ActivityIn(Schema):
    kind: Literal["call", "meeting", "visit", "email", "note"]
    subject: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    occurred_at: BoundedDateTime | None = None
    notes: str = Field("", max_length=10_000)
    location: str = Field("", max_length=200)
    duration_minutes: int | None = Field(None, ge=0, le=100_000)
    account_id: ObjectId | None = None
    contact_id: ObjectId | None = None
    deal_id: ObjectId | None = None


class ActivityOut(Schema):
    id: int
    kind: str
    subject: str
    notes: str
    occurred_at: datetime
    duration_minutes: int | None
    location: str
    account_id: int | None
    contact_id: int | None
    deal_id: int | None
    owner_id: int | None


def _activities(request: HttpRequest) -> Any:
    return scope_activities(_viewer(request), Activity.objects.all())


@activities_router.get("", response=Page[ActivityOut], summary="List activities")
def list_activities(
    request: HttpRequest,
    account_id: ObjectId | None = None,
    deal_id: ObjectId | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "sales.view_activity")
    rows = _activities(request)
    if account_id:
        rows = rows.filter(account_id=account_id)
    if deal_id:
        rows = rows.filter(deal_id=deal_id)
    return paginate(rows, cursor, limit)


@activities_router.post("", response={201: ActivityOut}, summary="Log an activity")
def create_activity(request: HttpRequest, payload: ActivityIn):
    check_perm(request, "sales.add_activity")
    activity = services.log_activity(services.ActivityInput(**payload.dict()), by=_viewer(request))
    return Status(201, activity)


@activities_router.get("/{int:activity_id}", response=ActivityOut, summary="Read an activity")
def get_activity(request: HttpRequest, activity_id: ObjectId):
    check_perm(request, "sales.view_activity")
    return get_object_or_404(_activities(request), pk=activity_id)


# --- tasks ------------------------------------------------------------------------------------

tasks_router = Router(tags=["sales"])


class TaskIn(Schema):
    title: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    due_at: BoundedDateTime
    remind_at: BoundedDateTime | None = None
    recurrence: Literal["", "daily", "weekly", "monthly"] = ""
    notes: str = Field("", max_length=10_000)
    owner_id: ObjectId | None = None
    account_id: ObjectId | None = None
    deal_id: ObjectId | None = None


class TaskPatch(Schema):
    title: str | None = Field(None, min_length=1, max_length=200, pattern=r"\S")
    due_at: BoundedDateTime | None = None
    notes: str | None = Field(None, max_length=10_000)
    done: bool | None = None


class TaskOut(Schema):
    id: int
    title: str
    notes: str
    due_at: datetime
    remind_at: datetime | None
    recurrence: str
    done_at: datetime | None
    owner_id: int
    account_id: int | None
    deal_id: int | None


def _tasks(request: HttpRequest) -> Any:
    return scope_owned(_viewer(request), Task.objects.all())


@tasks_router.get("", response=Page[TaskOut], summary="List tasks")
def list_tasks(
    request: HttpRequest,
    overdue: bool = False,
    open_only: bool = Query(False, alias="open"),
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "sales.view_task")
    rows = _tasks(request)
    if open_only or overdue:
        rows = rows.filter(done_at__isnull=True)
    if overdue:
        rows = rows.filter(due_at__lt=timezone.now())
    return paginate(rows, cursor, limit)


@tasks_router.post("", response={201: TaskOut}, summary="Create a task")
def create_task(request: HttpRequest, payload: TaskIn):
    check_perm(request, "sales.add_task")
    values = payload.dict()
    owner_id = values.pop("owner_id")
    owner = get_user_model().objects.filter(pk=owner_id).first() if owner_id else None
    if owner_id and owner is None:
        from django.core.exceptions import ValidationError  # noqa: PLC0415 -- rare path

        raise ValidationError(f"owner_id {owner_id}: no such user")
    task = services.create_task(by=_viewer(request), owner=owner, **values)
    return Status(201, task)


@tasks_router.get("/{int:task_id}", response=TaskOut, summary="Read a task")
def get_task(request: HttpRequest, task_id: ObjectId):
    check_perm(request, "sales.view_task")
    return get_object_or_404(_tasks(request), pk=task_id)


@tasks_router.patch("/{int:task_id}", response=TaskOut, summary="Change or complete a task")
def update_task(request: HttpRequest, task_id: ObjectId, payload: TaskPatch):
    check_perm(request, "sales.change_task")
    task = get_object_or_404(_tasks(request), pk=task_id)
    changes = payload.dict(exclude_unset=True)
    done = changes.pop("done", None)
    for name, value in changes.items():
        if value is not None:
            setattr(task, name, value)
    if changes:
        services.save_record(task, by=_viewer(request))
    if done:
        services.complete_task(task, by=_viewer(request))
    return _tasks(request).get(pk=task_id)


@tasks_router.delete("/{int:task_id}", response={204: None}, summary="Delete a task")
def delete_task(request: HttpRequest, task_id: ObjectId):
    check_perm(request, "sales.delete_task")
    services.delete_record(get_object_or_404(_tasks(request), pk=task_id), by=_viewer(request))
    return Status(204, None)


routers: list[tuple[str, Router]] = [
    ("/v1/accounts", accounts_router),
    ("/v1/contacts", contacts_router),
    ("/v1/pipelines", pipelines_router),
    ("/v1/deals", deals_router),
    ("/v1/activities", activities_router),
    ("/v1/tasks", tasks_router),
]
