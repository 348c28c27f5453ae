"""The dry run and the result of an import read as a summary, with labels in the user's language."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import translation

from kequn.customers.models import Customer
from kequn.customers.services import IdentityInput, create_customer
from kequn.ingest.models import ImportRun, MatchCandidate
from kequn.ingest.runs import import_file
from kequn.security.actors import system_actor

pytestmark = pytest.mark.django_db

UPLOAD = "/admin/ingest/importrun/upload/"
FILE = (
    "手机,姓名,城市,生日\n13800004767,王芳,广州,1990-01-02\n13700000000,新人,上海,\n12,坏号码,,\n"
)


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("boss", password="x"))
    return client


@pytest.fixture
def chen():
    return create_customer(
        {"name": "陈建", "city": "深圳"},
        [IdentityInput("phone", "13800004767")],
        by=system_actor("tests"),
    )


def upload(client, text: str = FILE) -> dict:
    page = client.post(
        UPLOAD, {"kind": "customers", "file": SimpleUploadedFile("c.csv", text.encode()),
                 "step": "upload"},
    )  # fmt: skip
    assert page.status_code == 200
    return {"stored": page.context["stored"], "kind": "customers", "system": "import",
            "display_name": "c.csv", "header_0": "手机", "field_0": "phone", "header_1": "姓名",
            "field_1": "name", "header_2": "城市", "field_2": "city", "header_3": "生日",
            "field_3": "birthday"}  # fmt: skip


def test_mapping_shows_field_labels_in_chinese(admin_client):
    page = admin_client.post(
        UPLOAD, {"kind": "customers", "file": SimpleUploadedFile("c.csv", FILE.encode()),
                 "step": "upload"}, HTTP_ACCEPT_LANGUAGE="zh-hans",
    )  # fmt: skip
    text = page.content.decode()
    assert '<option value="city" selected>城市</option>' in text
    assert '<option value="phone" selected>电话</option>' in text
    assert "\\u57ce" not in text


def test_dry_run_table_says_per_row_what_would_happen(admin_client, chen):
    form = upload(admin_client)
    page = admin_client.post(UPLOAD, {**form, "step": "dry_run"}, HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    rows = {r["row"]: r for r in page.context["rows"]}
    assert rows[2]["outcome"] == "review" and "陈建" in rows[2]["note"]
    assert rows[3]["outcome"] == "inserted" and ("city", "", "上海") in [
        (c[0], c[1], c[2]) for c in rows[3]["changes"]
    ]
    assert rows[4]["outcome"] == "quarantined" and rows[4]["field_label"] == "phone"
    assert (
        'id="dry-run-rows"' in text and "sent to review" in text and "shared or reassigned" in text
    )
    # Nothing was stored.
    assert Customer.objects.count() == 1 and not MatchCandidate.objects.exists()


def test_dry_run_masks_the_birthday_for_a_marketing_user(client, chen):
    user = User.objects.create_user("m", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="marketing"))
    client.force_login(user)
    form = upload(client)
    page = client.post(UPLOAD, {**form, "step": "dry_run"})
    assert page.status_code == 200
    changes = {r["row"]: r["changes"] for r in page.context["rows"]}[2]
    shown = [c for c in changes if c[2] and "1990" in c[2]]
    assert not shown and "1990-01-02" not in page.content.decode()


def test_result_page_is_a_readable_summary_with_links(admin_client, chen):
    form = upload(admin_client)
    done = admin_client.post(UPLOAD, {**form, "step": "import"}, HTTP_ACCEPT_LANGUAGE="en")
    assert done.status_code == 302
    run = ImportRun.objects.get(status="finished")
    page = admin_client.get(done.url, HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert page.status_code == 200 and 'id="import-result"' in text
    assert "'rows_read'" not in text and "\\u" not in text  # no Python dict, no JSON escapes
    counts = {name: (count, url) for name, _label, count, url in page.context["counts"]}
    assert counts["inserted"][0] == 1 and counts["review"][0] == 1 and counts["quarantined"][0] == 1
    new = Customer.objects.get(name="新人")
    assert counts["inserted"][1] == f"/admin/customers/customer/?import_run={run.pk}-inserted"
    assert admin_client.get(counts["inserted"][1]).context["cl"].result_count == 1
    quarantined = admin_client.get(counts["quarantined"][1])
    assert quarantined.context["cl"].result_count == 1
    review = admin_client.get(counts["review"][1])
    assert review.context["cl"].result_count == 1
    mapping = dict(page.context["mapping"])
    assert mapping == {"手机": "phone", "姓名": "name", "城市": "city", "生日": "birthday"}
    zh = admin_client.get(done.url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert dict(zh.context["mapping"])["城市"] == "城市" and "送审" in zh.content.decode()
    assert "电话号码无效: 1" in zh.content.decode()  # the reason by its label, not invalid_phone
    messages = [str(m) for m in done.wsgi_request._messages]
    assert messages and "{" not in messages[0] and "c.csv" in messages[0]
    assert run.records["inserted"] == [new.pk]


def test_quarantined_row_shows_its_mapping_with_labels(admin_client):
    import_file_path = upload(admin_client)
    admin_client.post(UPLOAD, {**import_file_path, "step": "import"})
    from kequn.ingest.models import QuarantinedRow

    row = QuarantinedRow.objects.get()
    page = admin_client.get(f"/admin/ingest/quarantinedrow/{row.pk}/change/",
                            HTTP_ACCEPT_LANGUAGE="zh-hans")  # fmt: skip
    text = page.content.decode()
    assert page.status_code == 200 and "城市 → 城市" in text and "手机 → 电话" in text
    assert "\\u57ce" not in text


def test_command_line_dry_run_lists_rows(write, chen):
    out = StringIO()
    with translation.override("en"):
        call_command("import", "customers", str(write("c.csv", FILE)), "--dry-run", stdout=out)
    text = out.getvalue()
    assert "dry run, nothing stored" in text and "sent to review 1" in text
    assert "row 2: sent to review" in text and "陈建" in text
    assert "row 3: created — new 新人" in text and "city: 上海" in text
    assert "row 4: quarantined" in text
    assert Customer.objects.count() == 1


def test_updated_row_shows_old_and_new_values(write):
    import_file(
        write("a.csv", "email,name,city\na@x.cn,Ann,杭州\n"), "customers", by=system_actor("tests")
    )
    out = StringIO()
    with translation.override("en"):
        call_command(
            "import", "customers", str(write("b.csv", "email,name,city\na@x.cn,Ann,Shanghai\n")),
            "--dry-run", stdout=out,
        )  # fmt: skip
    assert "row 2: updated — #" in out.getvalue() and "city: 杭州 → 上海" in out.getvalue()
