"""The sales API: generic role, scope, masking and paging tests per resource, and the rules."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from django.contrib.auth.models import User
from django.utils import timezone

from kequn.customers.models import Customer
from kequn.sales import services
from kequn.sales.models import Activity, Deal, Pipeline, Task
from tests.api.base import ALL, NONE, OWN, APIResourceTests, APIWritableResourceTests
from tests.sales.helpers import SYSTEM, in_days, make_account, make_pipeline, make_rep, stage

ROLES_DEALS = {
    "administrator": ALL,
    "marketing": ALL,
    "sales": OWN,
    "service": NONE,
    "analyst": ALL,
    "auditor": NONE,
}


def _owner_of(customer: Customer) -> User:
    customer.refresh_from_db(fields=["owner"])  # the base sets the owner in the database only
    if customer.owner_id is None:
        owner = make_rep()
        Customer.objects.filter(pk=customer.pk).update(owner=owner)
        return owner
    return User.objects.get(pk=customer.owner_id)


def _pipeline() -> Pipeline:
    """Return the one pipeline the API tests share (a pipeline per deal costs six stages)."""
    return Pipeline.objects.filter(name="API tests").first() or make_pipeline("API tests")


def _deal_for(customer: Customer) -> Deal:
    owner = _owner_of(customer)
    pipeline = _pipeline()
    account = make_account(owner)
    return services.create_deal(
        services.DealInput(
            name="年度换机",
            account_id=account.pk,
            stage_id=stage(pipeline, "Proposal").pk,
            close_date=in_days(30),
            amount=50000,
            owner_id=owner.pk,
        ),
        by=SYSTEM,
    )


class TestDealsAPI(APIWritableResourceTests):
    url = "/api/v1/deals"
    app_label = "sales"
    model_name = "deal"
    role_access: ClassVar = ROLES_DEALS
    role_writes: ClassVar = {**ROLES_DEALS, "marketing": NONE, "analyst": NONE}

    def make_object_for(self, customer):
        return _deal_for(customer)

    def extra_paths(self, obj):
        return [f"{self.url}/{obj.pk}/history", f"{self.url}/{obj.pk}/win-probability"]

    def create_payload(self):
        pipeline = _pipeline()
        return {
            "name": "新店铺货",
            "account_id": make_account().pk,
            "stage_id": stage(pipeline, "Qualification").pk,
            "close_date": in_days(15).isoformat(),
            "amount": "12000.00",
        }

    def update_payload(self):
        return {"name": "改名", "probability": 40}


class TestAccountsAPI(APIResourceTests):
    url = "/api/v1/accounts"
    app_label = "customers"
    model_name = "customer"
    role_access: ClassVar = {
        "administrator": ALL,
        "marketing": ALL,
        "sales": OWN,
        "service": ALL,
        "analyst": ALL,
        "auditor": NONE,
    }

    def make_object_for(self, customer):
        return make_account(_owner_of(customer))


class TestContactsAPI(APIResourceTests):
    url = "/api/v1/contacts"
    app_label = "customers"
    model_name = "companycontact"
    exposes_personal = True
    role_access: ClassVar = {
        "administrator": ALL,
        "marketing": ALL,
        "sales": OWN,
        "service": ALL,
        "analyst": ALL,
        "auditor": NONE,
    }

    def make_object_for(self, customer):
        account = make_account(_owner_of(customer))
        services.add_contact(account, customer, by=SYSTEM, role="decision")
        return customer


class TestActivitiesAPI(APIResourceTests):
    url = "/api/v1/activities"
    app_label = "sales"
    model_name = "activity"
    role_access: ClassVar = {**ROLES_DEALS, "marketing": NONE}

    def make_object_for(self, customer):
        owner = _owner_of(customer)
        account = make_account(owner)
        return services.log_activity(
            services.ActivityInput(kind="call", subject="电话", account_id=account.pk),
            by=SYSTEM,
            owner=owner,
        )


class TestTasksAPI(APIWritableResourceTests):
    url = "/api/v1/tasks"
    app_label = "sales"
    model_name = "task"
    role_access: ClassVar = {**ROLES_DEALS, "marketing": NONE}
    role_writes: ClassVar = {**ROLES_DEALS, "marketing": NONE, "analyst": NONE}

    def make_object_for(self, customer):
        owner = _owner_of(customer)
        return services.create_task(
            by=SYSTEM, owner=owner, title="回访", due_at=timezone.now() + timedelta(days=1)
        )

    def create_payload(self):
        return {"title": "报价", "due_at": (timezone.now() + timedelta(days=2)).isoformat()}

    def update_payload(self):
        return {"title": "再报价"}


class TestPipelinesAPI(APIResourceTests):
    url = "/api/v1/pipelines"
    app_label = "sales"
    model_name = "pipeline"
    customer_scoped = False
    role_access: ClassVar = {**ROLES_DEALS, "sales": ALL}

    def make_object(self):
        return make_pipeline()


def test_won_without_amount_is_a_422_naming_the_field(make_api_client):
    rep = make_rep()
    client = make_api_client("sales.view_deal", "sales.change_deal")
    client.user.groups.add(*rep.groups.all())
    pipeline = make_pipeline()
    account = make_account(client.user)
    deal = services.create_deal(
        services.DealInput(
            name="x",
            account_id=account.pk,
            stage_id=stage(pipeline, "Proposal").pk,
            close_date=in_days(5),
            owner_id=client.user.pk,
        ),
        by=SYSTEM,
    )
    response = client.send_json(
        "patch", f"/api/v1/deals/{deal.pk}", {"stage_id": stage(pipeline, "Won").pk}
    )
    assert response.status_code == 422
    assert "amount" in response.json()["detail"][0]
    deal.refresh_from_db()
    assert deal.status == Deal.Status.OPEN


def test_duplicate_account_check_and_confirm(make_api_client):
    client = make_api_client("customers.add_customer", "customers.view_customer")
    make_account(client.user, name="华南数码有限公司")
    payload = {"name": "华南数码"}
    check = client.send_json("post", "/api/v1/accounts/check", payload)
    assert check.status_code == 200 and "the same name" in check.json()["duplicates"][0]
    refused = client.send_json("post", "/api/v1/accounts", payload)
    assert refused.status_code == 422 and "confirm=true" in refused.json()["detail"][0]
    created = client.send_json("post", "/api/v1/accounts", {**payload, "confirm": True})
    assert created.status_code == 201 and created.json()["owner_id"] == client.user.pk


def test_account_with_a_missing_team_is_a_422_and_creates_nothing(make_api_client):
    client = make_api_client("customers.add_customer", "customers.view_customer")
    before = Customer.objects.count()
    response = client.send_json("post", "/api/v1/accounts", {"name": "星河贸易", "team_id": 999})
    assert response.status_code == 422
    assert response.json()["detail"][0].startswith("team_id 999: no such team")
    assert Customer.objects.count() == before


def test_activity_and_task_created_through_the_api(make_api_client):
    client = make_api_client("sales.add_activity", "sales.view_activity", "sales.add_task")
    account = make_account(client.user)
    visit = client.send_json(
        "post",
        "/api/v1/activities",
        {"kind": "visit", "subject": "门店拜访", "account_id": account.pk},
    )
    assert visit.status_code == 422 and "location" in visit.json()["detail"][0]
    ok = client.send_json(
        "post",
        "/api/v1/activities",
        {"kind": "visit", "subject": "门店拜访", "account_id": account.pk, "location": "福田"},
    )
    assert ok.status_code == 201
    assert Activity.objects.get(pk=ok.json()["id"]).owner_id == client.user.pk
    due = (timezone.now() + timedelta(days=1)).isoformat()
    task = client.send_json("post", "/api/v1/tasks", {"title": "寄样机", "due_at": due})
    assert task.status_code == 201
    assert Task.objects.get(pk=task.json()["id"]).owner_id == client.user.pk
