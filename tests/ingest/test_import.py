import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from kequn.commerce.models import Order, OrderLine, Product
from kequn.customers.models import Customer, Identity
from kequn.ingest.merging import undo_merge
from kequn.ingest.models import ImportRun, Merge, QuarantinedRow
from kequn.ingest.runs import ImportInterruptedError, import_file
from kequn.security.actors import system_actor
from tests.ingest.conftest import dump_state

pytestmark = pytest.mark.django_db

CN_CSV = (
    "\ufeff手机号,姓名,邮箱,城市,生日\n"
    "138 0013 8000,　张 伟 ,ZW@Example.com,上海,2024年3月5日\n"
    "13900139000,李娜,bad-email,Shanghai,1990/1/2\n"
    "+86 139-0013-9001,王芳,wf@x.cn,深圳,19900102\n"
)


def run(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("import", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_chinese_headers_with_bom_are_cleaned_and_counted(write):
    summary = run("customers", str(write("c.csv", CN_CSV)))
    assert summary["rows_read"] == 3
    assert (summary["inserted"], summary["quarantined"]) == (2, 1)
    assert summary["reasons"] == {"invalid_email": 1}
    zhang = Identity.objects.get(kind="phone", value="+8613800138000").customer
    assert (zhang.name, zhang.city, zhang.province) == ("张伟", "上海", "上海")
    assert str(zhang.birthday) == "2024-03-05"
    assert Identity.objects.filter(customer=zhang, kind="email", value="zw@example.com").exists()
    row = QuarantinedRow.objects.get()
    assert (row.row_number, row.field, row.reason) == (3, "email", "invalid_email")
    assert row.values["邮箱"] == "bad-email"
    run_record = ImportRun.objects.get(pk=summary["run_id"])
    assert run_record.status == "finished" and run_record.inserted == 2
    assert len(run_record.checksum) == 64


def test_same_file_twice_changes_nothing(write):
    path = write("c.csv", CN_CSV)
    run("customers", str(path))
    before = dump_state()
    second = run("customers", str(path))
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert dump_state() == before
    assert QuarantinedRow.objects.count() == 1


def test_gbk_file_is_detected(write):
    path = write("gbk.csv", "姓名,手机\n陈静,13700137000\n", encoding="gbk")
    assert run("customers", str(path))["inserted"] == 1
    assert Customer.objects.get().name == "陈静"


def test_dry_run_stores_nothing(write):
    summary = run("customers", str(write("c.csv", CN_CSV)), "--dry-run")
    assert summary["inserted"] == 2 and summary["dry_run"] is True
    assert Customer.objects.count() == 0 and QuarantinedRow.objects.count() == 0
    assert ImportRun.objects.get().status == "dry_run"


def test_excel_jsonl_and_parquet(tmp_path, write):
    wb = Workbook()
    ws = wb.active
    ws.append(["Email", "Name", "Birthday"])
    ws.append(["x@a.cn", "Xiao", None])
    wb.save(tmp_path / "c.xlsx")
    assert run("customers", str(tmp_path / "c.xlsx"))["inserted"] == 1
    lines = [{"mobile": "13600136000", "name": "Jing"}, {"mobile": 13600136001, "name": "Li"}]
    jl = write("c.jsonl", "\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    summary = run("customers", str(jl))
    assert summary["inserted"] == 2 and summary["reasons"] == {"invalid_json": 1}
    pq.write_table(
        pa.table({"email": ["p@q.cn", "r@q.cn"], "city": ["Beijing", "北京"]}),
        tmp_path / "c.parquet",
    )
    assert run("customers", str(tmp_path / "c.parquet"))["inserted"] == 2
    assert set(Customer.objects.filter(city="北京").values_list("name", flat=True)) == {""}


def test_shopify_and_hubspot_presets(write):
    shopify = write(
        "customers_export.csv",
        "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address City,"
        "Default Address Province Code,Default Address Country Code,Phone\n"
        "7001,Ada,Lovelace,ada@x.com,yes,Shenzhen,GD,CN,13500135000\n",
    )
    assert run("customers", str(shopify), "--mapping", "shopify")["inserted"] == 1
    ada = Identity.objects.get(kind="external", system="shopify", value="7001").customer
    assert (ada.name, ada.city, ada.province) == ("Ada Lovelace", "深圳", "广东")
    hubspot = write(
        "hubspot.csv",
        "Record ID,First Name,Last Name,Email,Phone Number\n55,Ada,Lovelace,ada@x.com,\n",
    )
    summary = run("customers", str(hubspot), "--mapping", "hubspot")
    # Same email from another system: the same customer, now also known by its HubSpot id.
    assert summary["updated"] == 1 and Customer.objects.count() == 1
    assert Identity.objects.filter(customer=ada, system="hubspot", value="55").exists()


def test_mapping_file(write):
    mapping = write("m.json", json.dumps({"columns": {"联系人手机": "phone", "称呼": "name"}}))
    path = write("c.csv", "联系人手机,称呼\n13300133000,周\n")
    assert run("customers", str(path), "--mapping", str(mapping))["inserted"] == 1
    bad = write("bad.json", json.dumps({"columns": {"x": "shoe_size"}}))
    with pytest.raises(CommandError, match="shoe_size"):
        run("customers", str(path), "--mapping", str(bad))


def test_shared_identifier_merges_across_sources_and_undo_restores(write):
    run("customers", str(write("a.csv", "id,email,name\n1,a@x.cn,Ann\n")), "--source", "crm")
    run("customers", str(write("b.csv", "id,phone,name\n9,13100131000,Anne\n")), "--source", "shop")
    ann = Identity.objects.get(value="a@x.cn").customer
    anne = Identity.objects.get(value="+8613100131000").customer
    Order.objects.create(
        number="O-1", customer=anne, total_amount=5, ordered_at="2024-01-01T00:00Z"
    )
    summary = run("customers", str(write("c.csv", "email,phone\na@x.cn,13100131000\n")))
    assert summary["merged"] == 1
    anne.refresh_from_db()
    assert anne.merged_into_id == ann.pk
    assert Identity.objects.get(value="+8613100131000").customer_id == ann.pk
    assert Order.objects.get(number="O-1").customer_id == ann.pk
    merge = Merge.objects.get()
    assert merge.rule.startswith("deterministic") and merge.absorbed_id == anne.pk
    undo_merge(merge, by=system_actor("tests"))
    anne.refresh_from_db()
    assert anne.merged_into_id is None
    assert Identity.objects.get(value="+8613100131000").customer_id == anne.pk
    assert Order.objects.get(number="O-1").customer_id == anne.pk
    assert set(Identity.objects.filter(customer=ann).values_list("value", flat=True)) == {
        "a@x.cn",
        "1",
    }


def _big_file(write, n=250):
    rows = ["email,phone,name,city"]
    for i in range(n):
        # Every 7th row repeats an earlier email, some rows are bad: merges and quarantine mid-file.
        email = f"u{i - 3 if i % 7 == 6 else i}@x.cn"
        phone = "bad" if i % 31 == 5 else f"1880000{i:04d}"
        rows.append(f"{email},{phone},User {i},杭州")
    return write("big.csv", "\n".join(rows) + "\n")


def test_interrupted_import_rerun_equals_uninterrupted(write):
    path = _big_file(write)
    import_file(path, "customers", batch_size=40, by=system_actor("tests"))
    expected = dump_state()
    assert len(expected["customers"]) > 100 and expected["quarantine"]
    for model in (QuarantinedRow, Merge, Identity, Customer):
        model.objects.all().delete()
    with pytest.raises(ImportInterruptedError):
        import_file(
            path, "customers", batch_size=40, stop_after_batches=3, by=system_actor("tests")
        )
    assert ImportRun.objects.filter(status="failed").count() == 1
    partial = dump_state()
    assert 0 < len(partial["customers"]) < len(expected["customers"])
    import_file(path, "customers", batch_size=40, by=system_actor("tests"))
    assert dump_state() == expected


def test_products_then_orders(write):
    products = write(
        "p.csv",
        'sku,name,price,brand\nA1,Case,"¥1,299.00",Acme\nB2,Cable,19.90,Acme\nC3,Bad,abc,\n',
    )
    summary = run("products", str(products))
    assert (summary["inserted"], summary["reasons"]) == (2, {"invalid_amount": 1})
    assert str(Product.objects.get(sku="A1").price) == "1299.00"
    orders = write(
        "o.csv",
        "订单号,手机,下单时间,数量,单价,商品编码,订单金额,状态\n"
        "S-1,13800138000,2024/3/5 10:00,2,19.90,B2,39.80,已付款\n"
        'S-1,13800138000,2024/3/5 10:00,1,1299,A1,"1,338.80",已付款\n'
        "S-2,13800138000,2024-03-06,-1,19.90,B2,19.90,已付款\n"
        "S-3,13800138000,2024-03-06,1,5,ZZ,5,已付款\n",
    )
    summary = run("orders", str(orders))
    assert summary["reasons"] == {"negative_quantity": 1, "unknown_product": 1}
    order = Order.objects.get(number="S-1")
    assert (str(order.total_amount), order.status) == ("1338.80", "paid")
    assert order.customer.identities.get().value == "+8613800138000"
    assert OrderLine.objects.filter(order=order).count() == 2
    again = run("orders", str(orders))
    assert again["inserted"] == 0 and OrderLine.objects.count() == 2


def test_quarantined_row_fixed_and_retried(write):
    run("customers", str(write("c.csv", CN_CSV)))
    call_command(
        "quarantine", "set", str(QuarantinedRow.objects.get().pk), "--value", "邮箱=ln@x.cn"
    )
    call_command("quarantine", "retry")
    row = QuarantinedRow.objects.get()
    assert row.status == "resolved"
    assert Identity.objects.get(value="ln@x.cn").customer.name == "李娜"


def test_changed_profile_is_updated_with_its_birth_year(write):
    first = "email,phone,name,birthday\na@x.cn,13100131000,Ann,1980-02-03\n"
    run("customers", str(write("a.csv", first)))
    # Email and phone both lead to Ann (a strong match) and the source is the same: updated.
    second = "email,phone,name,birthday,city\nA@x.cn,13100131000,Ann Lee,1990-04-05,杭州\n"
    summary = run("customers", str(write("b.csv", second)))
    assert (summary["inserted"], summary["updated"]) == (0, 1)
    ann = Customer.objects.get()
    assert (ann.name, str(ann.birthday), ann.birth_year) == ("Ann Lee", "1990-04-05", 1990)
    assert (ann.city, ann.province) == ("杭州", "浙江")
    phone = Identity.objects.get(kind="phone", value="+8613100131000")
    assert phone.customer_id == ann.pk and phone.value_index and phone.value == "+8613100131000"


def test_identity_stored_twice_is_refused_by_the_database(write):
    from django.db import IntegrityError, transaction

    from kequn.db import insert_objects

    run("customers", str(write("a.csv", "email\na@x.cn\n")))
    ann = Customer.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_objects(Identity, [Identity(customer=ann, kind="email", value="a@x.cn")])
    assert Identity.objects.count() == 1


def test_customers_written_in_bulk_get_their_own_ids_and_defaults(write):
    rows = "".join(f"u{i}@x.cn,U{i}\n" for i in range(30))
    import_file(
        write("c.csv", "email,name\n" + rows), "customers", batch_size=10, by=system_actor("tests")
    )
    owner = dict(Identity.objects.filter(kind="email").values_list("value_index", "customer_id"))
    names = dict(Customer.objects.values_list("pk", "name"))
    assert len(owner) == len(names) == 30
    for i in range(30):
        assert names[Identity.objects.get(kind="email", value=f"u{i}@x.cn").customer_id] == f"U{i}"
    assert set(Customer.objects.values_list("processing_restricted", flat=True)) == {False}
    # The next record made elsewhere does not collide with ids the import handed out.
    assert Customer.objects.create(name="later").pk > max(names)
