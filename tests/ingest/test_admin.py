import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from kequn.customers.models import Customer, Identity
from kequn.ingest.merging import merge_customers
from kequn.ingest.models import ImportRun, Merge, QuarantinedRow
from kequn.ingest.runs import import_file
from kequn.security.actors import system_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("boss", password="x"))
    return client


def test_upload_preview_dry_run_then_import(admin_client):
    content = "手机,姓名,备注\n13800138000,张伟,vip\n12,坏号码,\n".encode()
    page = admin_client.post(
        "/admin/ingest/importrun/upload/",
        {"kind": "customers", "file": SimpleUploadedFile("c.csv", content), "step": "upload"},
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        'name="stored"' in text
        and "13800138000" in text
        and '<option value="phone" selected>' in text
    )
    stored = page.context["stored"]
    form = {"stored": stored, "kind": "customers", "system": "import", "display_name": "c.csv",
            "header_0": "手机", "field_0": "phone", "header_1": "姓名", "field_1": "name",
            "header_2": "备注", "field_2": ""}  # fmt: skip
    dry = admin_client.post("/admin/ingest/importrun/upload/", {**form, "step": "dry_run"})
    assert dry.context["summary"].inserted == 1 and dry.context["summary"].quarantined == 1
    assert Customer.objects.count() == 0
    done = admin_client.post("/admin/ingest/importrun/upload/", {**form, "step": "import"})
    assert done.status_code == 302
    assert Identity.objects.get(kind="phone").customer.name == "张伟"
    assert ImportRun.objects.get(status="finished").file_name == "c.csv"


def test_bad_upload_shows_error_not_traceback(admin_client):
    page = admin_client.post(
        "/admin/ingest/importrun/upload/",
        {"kind": "customers", "file": SimpleUploadedFile("x.csv", b"a,a\n1,2\n"), "step": "upload"},
    )
    assert page.status_code == 200 and "x.csv" in page.content.decode()


def test_quarantine_list_export_and_merge_undo_action(admin_client, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("email,name\nnot-an-email,Bad\n", encoding="utf-8")
    import_file(path, "customers", by=system_actor("tests"))
    assert "not-an-email" in admin_client.get("/admin/ingest/quarantinedrow/").content.decode()
    row = QuarantinedRow.objects.get()
    export = admin_client.post(
        "/admin/ingest/quarantinedrow/", {"action": "export_csv", "_selected_action": [row.pk]}
    )
    assert export["Content-Type"].startswith("text/csv") and b"invalid_email" in export.content
    a, b = Customer.objects.create(name="A"), Customer.objects.create(name="B")
    merge = merge_customers(a, b, rule="manual", by=system_actor("tests"))
    admin_client.post(
        "/admin/ingest/merge/", {"action": "undo_merges", "_selected_action": [merge.pk]}
    )
    merge.refresh_from_db()
    assert merge.undone_at is not None
    for url in (
        "/admin/ingest/merge/",
        "/admin/ingest/matchcandidate/",
        "/admin/ingest/importrun/",
    ):
        assert admin_client.get(url).status_code == 200
    assert Merge.objects.count() == 1
