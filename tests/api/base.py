"""Generic API tests: subclass once per endpoint to get auth, permission, CRUD and paging tests.

Later features extend this base with role and masking checks, so every endpoint gets them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model

from tests.conftest import TokenClient


class APIResourceTests:
    """Mixin of tests for one REST resource; set the class attributes and make_object."""

    url: ClassVar[str]  # e.g. "/api/v1/customers"
    app_label: ClassVar[str]
    model_name: ClassVar[str]

    def make_object(self) -> Model:
        raise NotImplementedError

    def perm(self, action: str) -> str:
        return f"{self.app_label}.{action}_{self.model_name}"

    def detail(self, obj_id: int) -> str:
        return f"{self.url}/{obj_id}"

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

        client = make_api_client(self.perm("view"))
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
        client = make_api_client(self.perm("view"))
        listing = client.get(self.url).json()
        assert obj.pk in [item["id"] for item in listing["items"]]
        response = client.get(self.detail(obj.pk))
        assert response.status_code == 200
        assert response.json()["id"] == obj.pk

    def test_missing_object_is_404(self, make_api_client):
        client = make_api_client(self.perm("view"))
        assert client.get(self.detail(987_654_321)).status_code == 404

    def test_cursor_paging_covers_every_object_once(self, make_api_client):
        ids = {self.make_object().pk for _ in range(5)}
        client = make_api_client(self.perm("view"))
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
        client = make_api_client(self.perm("view"))
        assert client.get(f"{self.url}?cursor=%%%").status_code == 400
        assert client.get(f"{self.url}?limit=0").status_code == 400
        assert client.get(f"{self.url}?limit=100000").status_code == 400


class APIWritableResourceTests(APIResourceTests):
    """Adds create, update and delete tests for resources the API lets users change."""

    def create_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def update_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def test_view_permission_does_not_allow_writes(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(self.perm("view"))
        assert client.send_json("post", self.url, self.create_payload()).status_code == 403
        response = client.send_json("patch", self.detail(obj.pk), self.update_payload())
        assert response.status_code == 403
        assert client.delete(self.detail(obj.pk)).status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()

    def test_create(self, make_api_client):
        client = make_api_client(self.perm("view"), self.perm("add"))
        response = client.send_json("post", self.url, self.create_payload())
        assert response.status_code == 201, response.content
        created = response.json()
        assert client.get(self.detail(created["id"])).json() == created

    def test_update(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(self.perm("view"), self.perm("change"))
        payload = self.update_payload()
        response = client.send_json("patch", self.detail(obj.pk), payload)
        assert response.status_code == 200, response.content
        for key, value in payload.items():
            assert response.json()[key] == value

    def test_delete(self, make_api_client):
        obj = self.make_object()
        client = make_api_client(self.perm("view"), self.perm("delete"))
        assert client.delete(self.detail(obj.pk)).status_code == 204
        assert client.get(self.detail(obj.pk)).status_code == 404
