"""Every REST resource runs the generic API tests; resource-specific checks follow."""

from __future__ import annotations

from kequn.customers.models import Customer, Identity
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, SALES, SERVICE
from tests.api.base import ALL, NONE, OWN, APIResourceTests, APIWritableResourceTests
from tests.conftest import TokenClient
from tests.factories import make_customer, make_event, make_order, make_product


class TestCustomersAPI(APIWritableResourceTests):
    url = "/api/v1/customers"
    app_label = "customers"
    model_name = "customer"
    exposes_personal = True
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: OWN,
        SERVICE: ALL,
        ANALYST: ALL,
        AUDITOR: NONE,
    }
    role_writes = {
        ADMINISTRATOR: ALL,
        MARKETING: NONE,
        SALES: OWN,
        SERVICE: ALL,
        ANALYST: NONE,
        AUDITOR: NONE,
    }

    def make_object_for(self, customer):
        return customer

    def extra_paths(self, obj):
        return [f"{self.detail(obj.pk)}/totals"]

    def create_payload(self):
        return {
            "name": " 张伟 ",
            "city": "杭州",
            "province": "浙江",
            "gender": "m",
            "birthday": "1990-05-04",
            "identities": [
                {"kind": "phone", "value": "138 0013 8000"},
                {"kind": "email", "value": "Zhang.Wei@Example.COM"},
                {"kind": "external", "system": "shopify", "value": "A-1"},
            ],
        }

    def update_payload(self):
        return {"city": "苏州", "occupation": "engineer"}

    def test_identities_are_stored_normalised(self, make_api_client):
        client = make_api_client(superuser=True)
        created = client.send_json("post", self.url, self.create_payload()).json()
        values = {i["kind"]: i["value"] for i in created["identities"]}
        assert values["phone"] == "+8613800138000"
        assert values["email"] == "zhang.wei@example.com"

    def test_lookup_by_any_identity_format(self, make_api_client):
        customer = make_customer(phone="13800138000", email="li@example.com")
        client = make_api_client(*self.read_perms())
        for kind, value in [
            ("phone", "+86 138-0013-8000"),
            ("phone", "１３８００１３８０００"),
            ("email", "LI@example.com"),
        ]:
            response = client.get(f"{self.url}/lookup", {"kind": kind, "value": value})
            assert response.status_code == 200, (kind, value)
            assert response.json()["id"] == customer.pk
        assert (
            client.get(f"{self.url}/lookup", {"kind": "email", "value": "x@y.org"}).status_code
            == 404
        )

    def test_duplicate_identity_is_refused_and_nothing_is_stored(self, make_api_client):
        make_customer(email="taken@example.com")
        client = make_api_client(superuser=True)
        before = Customer.objects.count()
        payload = {"name": "B", "identities": [{"kind": "email", "value": "TAKEN@example.com"}]}
        response = client.send_json("post", self.url, payload)
        assert response.status_code == 422
        assert "already belongs" in str(response.json()["detail"])
        assert Customer.objects.count() == before

    def test_invalid_input_is_422_with_field(self, make_api_client):
        client = make_api_client(superuser=True)
        for payload in [
            {"name": "x" * 201},
            {"gender": "q"},
            {"identities": [{"kind": "email", "value": "not-an-email"}]},
            {"identities": [{"kind": "phone", "value": "12"}]},
            {"birthday": "1990-13-45"},
        ]:
            response = client.send_json("post", self.url, payload)
            assert response.status_code == 422, payload
        assert Customer.objects.count() == 0
        assert Identity.objects.count() == 0

    def test_filters(self, make_api_client):
        make_customer(name="王芳", city="北京")
        make_customer(name="李娜", city="上海")
        client = make_api_client(*self.read_perms())
        names = [c["name"] for c in client.get(self.url, {"city": "北京"}).json()["items"]]
        assert names == ["王芳"]
        names = [c["name"] for c in client.get(self.url, {"q": "李"}).json()["items"]]
        assert names == ["李娜"]

    def test_totals_count_only_purchases(self, make_api_client):
        customer = make_customer()
        make_order(customer, "100.00", days_ago=10)
        make_order(customer, "250.50", days_ago=2)
        make_order(customer, "999.00", status="refunded")
        client = make_api_client(*self.read_perms())
        totals = client.get(f"{self.detail(customer.pk)}/totals").json()
        assert totals["orders"] == 2
        assert float(totals["revenue"]) == 350.50
        assert totals["first_purchase"] < totals["last_purchase"]

    def test_delete_keeps_orders(self, make_api_client):
        customer = make_customer()
        order = make_order(customer)
        client = make_api_client(superuser=True)
        assert client.delete(self.detail(customer.pk)).status_code == 204
        order.refresh_from_db()
        assert order.customer_id is None


class TestOrdersAPI(APIResourceTests):
    url = "/api/v1/orders"
    app_label = "commerce"
    model_name = "order"
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: OWN,
        SERVICE: ALL,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object_for(self, customer):
        return make_order(customer)

    def test_filter_by_customer_and_status(self, make_api_client):
        a, b = make_customer(), make_customer()
        mine = make_order(a)
        make_order(b)
        make_order(a, status="cancelled")
        client = make_api_client(*self.read_perms())
        items = client.get(self.url, {"customer_id": a.pk, "status": "completed"}).json()["items"]
        assert [o["id"] for o in items] == [mine.pk]
        assert items[0]["lines"][0]["quantity"] == 1


class TestProductsAPI(APIResourceTests):
    url = "/api/v1/products"
    app_label = "commerce"
    model_name = "product"
    customer_scoped = False
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: ALL,
        SERVICE: ALL,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object(self):
        return make_product()


class TestEventsAPI(APIResourceTests):
    url = "/api/v1/events"
    app_label = "events"
    model_name = "event"
    role_access = {
        ADMINISTRATOR: ALL,
        MARKETING: ALL,
        SALES: OWN,
        SERVICE: ALL,
        ANALYST: ALL,
        AUDITOR: NONE,
    }

    def make_object_for(self, customer):
        return make_event(customer)


def test_only_login_and_health_are_public(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/admin/login/").status_code == 200
    for path in ["/admin/", "/api/docs", "/api/openapi.json", "/admin/customers/customer/"]:
        response = client.get(path)
        assert response.status_code in (302, 401), path
        if response.status_code == 302:
            assert "/login/" in response["Location"]


def test_openapi_schema_is_served_to_staff(admin_client):
    schema = admin_client.get("/api/openapi.json").json()
    for path in ["/api/v1/customers", "/api/v1/orders", "/api/v1/products", "/api/v1/events"]:
        assert path in schema["paths"]
    assert admin_client.get("/api/docs").status_code == 200


def test_session_login_works_for_api(admin_client):
    make_customer()
    assert admin_client.get("/api/v1/customers").status_code == 200
    assert TokenClient().get("/api/v1/customers").status_code == 401
