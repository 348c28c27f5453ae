"""Generic API tests: subclass once per endpoint to get auth, permission, CRUD and paging tests.

Every endpoint class also runs, for every role (administrator, marketing, sales, service,
analyst, auditor): the expected status of its list, detail and extra paths (200, 403 for a
function the role lacks, 404 for another sales rep's object), of a change when the resource
is writable, and the masking of personal fields in every response body.
"""

from __future__ import annotations

import datetime as dt
import json
from itertools import count
from typing import Any, ClassVar

import pytest
from django.contrib.auth.models import Group, User
from django.db.models import Model

from kequn.customers.models import Customer
from kequn.customers.services import IdentityInput, create_customer
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry
from kequn.security.audit.services import VIEW_PERSONAL
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, ROLES, SALES, SERVICE
from kequn.security.services import create_api_token
from tests.conftest import TokenClient

VIEW_ALL = "customers.view_all_customers"
PHONE, PHONE_SHOWN, PHONE_MASKED = "13800138000", "+8613800138000", "138****8000"
BIRTHDAY = dt.date(1990, 5, 4)
ALL_FIELDS = frozenset({"phone", "email", "address", "birthday"})
# What each role is documented to see unmasked (README, "Roles"); checked, not computed.
ROLE_UNMASKED: dict[str, frozenset[str]] = {
    ADMINISTRATOR: ALL_FIELDS,
    MARKETING: frozenset(),
    SALES: ALL_FIELDS,  # on the accounts they own, the only ones they see
    SERVICE: frozenset({"phone", "email"}),
    ANALYST: frozenset(),
    AUDITOR: frozenset(),
}
ALL, OWN, NONE = "all", "own", "none"
_users = count(1)


def make_role_client(role: str) -> TokenClient:
    """Return an API client of a new user holding one role (the group as synchronised)."""
    user = User.objects.create_user(f"{role}-{next(_users)}", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    _, token = create_api_token(user.username, by=system_actor("tests"))
    client = TokenClient(token)
    client.user = User.objects.get(pk=user.pk)
    return client


def make_personal_customer(owner: User | None = None, email: str = "") -> Customer:
    """Create a customer with a phone, an email and a birthday, owned by a sales rep."""
    n = next(_users)
    customer = create_customer(
        {"name": f"客户{n}", "city": "上海", "province": "上海", "birthday": BIRTHDAY},
        [
            IdentityInput("phone", f"1380013{n % 10_000:04d}"),
            IdentityInput("email", email or f"zhang.wei{n}@example.com"),
        ],
        by=system_actor("tests"),
    )
    Customer.objects.filter(pk=customer.pk).update(owner=owner)
    return customer


class APIResourceTests:
    """Mixin of tests for one REST resource; set the class attributes and make_object."""

    url: ClassVar[str]  # e.g. "/api/v1/customers"
    app_label: ClassVar[str]
    model_name: ClassVar[str]
    # Objects belong to a customer: a role without customers.view_all_customers sees its own.
    customer_scoped: ClassVar[bool] = True
    # Responses carry the customer's phone, email and birthday (masked by role).
    exposes_personal: ClassVar[bool] = False
    # What each role may read: ALL, OWN (a sales rep's own accounts) or NONE (403).
    role_access: ClassVar[dict[str, str]]

    def make_object_for(self, customer: Customer) -> Model:
        """Create an object belonging to this customer (customer-scoped resources)."""
        raise NotImplementedError

    def make_object(self) -> Model:
        return self.make_object_for(make_personal_customer())

    def extra_paths(self, obj: Model) -> list[str]:
        """Other GET paths about one object, checked for every role like the detail."""
        return []

    def perm(self, action: str) -> str:
        return f"{self.app_label}.{action}_{self.model_name}"

    def read_perms(self, *extra: str) -> tuple[str, ...]:
        """Permissions a plain reader needs to see every object."""
        return (self.perm("view"), *((VIEW_ALL,) if self.customer_scoped else ()), *extra)

    def detail(self, obj_id: int) -> str:
        return f"{self.url}/{obj_id}"

    # --- roles: functions, objects and fields ---------------------------------------------
    def make_role_objects(self, client: TokenClient) -> tuple[Model, Model | None]:
        """Return an object of the client's own account and one of another sales rep."""
        if not self.customer_scoped:
            return self.make_object(), None
        rep = User.objects.create_user(f"other-rep-{next(_users)}", password="x")
        return (
            self.make_object_for(make_personal_customer(client.user)),
            self.make_object_for(make_personal_customer(rep)),
        )

    def check_masking(self, role: str, body: bytes, shows_customer: bool = True) -> None:
        """Assert a response body holds personal fields exactly as the role may see them.

        shows_customer: the body is a customer list or detail, so the fields must be there
        (unmasked or masked); other bodies (totals, …) must merely not leak them.
        """
        text = json.dumps(json.loads(body) if body else None, ensure_ascii=False)
        unmasked = ROLE_UNMASKED[role] if self.exposes_personal else frozenset()
        present = self.exposes_personal and shows_customer
        if "phone" in unmasked:
            assert not present or PHONE[:7] in text, f"{role} should see the phone unmasked"
        else:
            assert PHONE[:7] not in text, f"{role} was shown a full phone number"
            assert not present or "138****" in text, f"{role} should see the phone masked"
        if "email" in unmasked:
            assert not present or "zhang.wei" in text, f"{role} should see the email unmasked"
        else:
            assert "zhang.wei" not in text, f"{role} was shown a full email address"
            assert not present or "z***@example.com" in text
        if "birthday" in unmasked:
            assert not present or BIRTHDAY.isoformat() in text
        else:
            assert BIRTHDAY.isoformat() not in text, f"{role} was shown a full birthday"
            assert not present or "****-05-04" in text

    @pytest.mark.parametrize("role", ROLES)
    def test_role_reads(self, role, db):
        client = make_role_client(role)
        access = self.role_access[role]
        own, other = self.make_role_objects(client)
        listing = client.get(self.url)
        if access == NONE:
            assert listing.status_code == 403, (role, listing.content)
            for path in [self.detail(own.pk), *self.extra_paths(own)]:
                assert client.get(path).status_code == 403, (role, path)
            return
        assert listing.status_code == 200, (role, listing.content)
        ids = [item["id"] for item in listing.json()["items"]]
        assert own.pk in ids, role
        bodies = [(listing.content, True)]
        for path in [self.detail(own.pk), *self.extra_paths(own)]:
            response = client.get(path)
            assert response.status_code == 200, (role, path, response.content)
            bodies.append((response.content, path == self.detail(own.pk)))
        if other is not None:
            other_paths = [self.detail(other.pk), *self.extra_paths(other)]
            if access == OWN:
                # Another rep's object answers exactly like one that does not exist.
                assert other.pk not in ids, role
                for path in other_paths:
                    response = client.get(path)
                    assert response.status_code == 404, (role, path, response.content)
            else:
                assert other.pk in ids, role
                for path in other_paths:
                    response = client.get(path)
                    assert response.status_code == 200, (role, path)
                    bodies.append((response.content, path == self.detail(other.pk)))
        for body, shows_customer in bodies:
            self.check_masking(role, body, shows_customer)
        if self.exposes_personal:
            views = AuditEntry.objects.filter(actor_id=client.user.pk, action=VIEW_PERSONAL)
            assert views.exists() == bool(ROLE_UNMASKED[role]), role
            if views.exists():
                assert views.filter(target_id=str(own.pk)).exists()

    # --- authentication -------------------------------------------------------------
    def test_anonymous_is_refused(self, db):
        obj = self.make_object()
        client = TokenClient()
        for path in (self.url, self.detail(obj.pk)):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "authentication required" in response.json()["detail"]

    def test_unknown_token_is_refused(self, db):
        client = TokenClient("kq_not-a-real-token")
        assert client.get(self.url).status_code == 401

    def test_revoked_token_is_refused(self, make_api_client):
        from kequn.security.models import ApiToken

        client = make_api_client(*self.read_perms())
        assert client.get(self.url).status_code == 200
        ApiToken.objects.filter(user=client.user).update(revoked=True)
        assert client.get(self.url).status_code == 401

    # --- permissions ----------------------------------------------------------------
    def test_without_view_permission_is_forbidden(self, make_api_client):
        obj = self.make_object()
        client = make_api_client()
        assert client.get(self.url).status_code == 403
        assert client.get(self.detail(obj.pk)).status_code == 403

    # --- reading --------------------------------------------------------------------
    def test_list_and_read(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(*self.read_perms())
        listing = client.get(self.url).json()
        assert obj.pk in [item["id"] for item in listing["items"]]
        response = client.get(self.detail(obj.pk))
        assert response.status_code == 200
        assert response.json()["id"] == obj.pk

    def test_missing_object_is_404(self, make_api_client):
        client = make_api_client(*self.read_perms())
        assert client.get(self.detail(987_654_321)).status_code == 404

    def test_cursor_paging_covers_every_object_once(self, make_api_client):
        ids = {self.make_object().pk for _ in range(5)}
        client = make_api_client(*self.read_perms())
        seen: list[int] = []
        url = f"{self.url}?limit=2"
        while url:
            page = client.get(url).json()
            assert len(page["items"]) <= 2
            seen += [item["id"] for item in page["items"]]
            url = f"{self.url}?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
        assert len(seen) == len(set(seen))
        assert ids <= set(seen)
        assert seen == sorted(seen, reverse=True)

    def test_bad_cursor_and_limit_are_400(self, make_api_client):
        client = make_api_client(*self.read_perms())
        assert client.get(f"{self.url}?cursor=%%%").status_code == 400
        assert client.get(f"{self.url}?limit=0").status_code == 400
        assert client.get(f"{self.url}?limit=100000").status_code == 400


class APIWritableResourceTests(APIResourceTests):
    """Adds create, update and delete tests for resources the API lets users change."""

    def create_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def update_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    # What each role may change: ALL, OWN (only its own accounts) or NONE (403).
    role_writes: ClassVar[dict[str, str]]

    @pytest.mark.parametrize("role", ROLES)
    def test_role_writes(self, role, db):
        client = make_role_client(role)
        access = self.role_writes[role]
        own, other = self.make_role_objects(client)
        response = client.send_json("patch", self.detail(own.pk), self.update_payload())
        expected = 403 if access == NONE else 200
        assert response.status_code == expected, (role, response.content)
        if expected == 200:
            self.check_masking(role, response.content)
        if other is not None and access != NONE:
            response = client.send_json("patch", self.detail(other.pk), self.update_payload())
            assert response.status_code == (404 if access == OWN else 200), role
        if access == OWN:
            assert client.delete(self.detail(other.pk)).status_code in (403, 404), role
            assert type(other).objects.filter(pk=other.pk).exists()

    def test_view_permission_does_not_allow_writes(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(*self.read_perms())
        assert client.send_json("post", self.url, self.create_payload()).status_code == 403
        response = client.send_json("patch", self.detail(obj.pk), self.update_payload())
        assert response.status_code == 403
        assert client.delete(self.detail(obj.pk)).status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()

    def test_create(self, make_api_client):
        client = make_api_client(*self.read_perms(self.perm("add")))
        response = client.send_json("post", self.url, self.create_payload())
        assert response.status_code == 201, response.content
        created = response.json()
        assert client.get(self.detail(created["id"])).json() == created

    def test_update(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(*self.read_perms(self.perm("change")))
        payload = self.update_payload()
        response = client.send_json("patch", self.detail(obj.pk), payload)
        assert response.status_code == 200, response.content
        for key, value in payload.items():
            assert response.json()[key] == value

    def test_delete(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(*self.read_perms(self.perm("delete")))
        assert client.delete(self.detail(obj.pk)).status_code == 204
        assert client.get(self.detail(obj.pk)).status_code == 404
