"""One canonical place name: 深圳 = 深圳市 = Shenzhen on every way in and in every filter."""

import json
from datetime import date
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from kequn.customers.models import Address, Customer
from kequn.customers.places import (
    CITIES,
    PROVINCES,
    find_city,
    find_province,
    get_province_of_city,
    normalize_city,
    normalize_place,
    normalize_province,
)
from kequn.customers.services import create_customer, update_customer
from kequn.security.actors import system_actor


@pytest.mark.parametrize(
    "raw", ["深圳", "深圳市", "Shenzhen", " shen zhen ", "440300", "广东省深圳市"]
)
def test_every_spelling_of_a_city_is_one_name(raw):
    assert normalize_city(raw) == "深圳"
    place = find_city(raw)
    assert (place.code, place.full_name, place.pinyin) == ("440300", "深圳市", "Shenzhen")


@pytest.mark.parametrize("raw", ["广东", "广东省", "Guangdong", "GD", "CN-GD", "440000"])
def test_every_spelling_of_a_province_is_one_name(raw):
    assert normalize_province(raw) == "广东"
    assert find_province(raw).full_name == "广东省"


def test_table_covers_every_province_and_prefecture_with_unique_codes():
    assert len(PROVINCES) == 34
    assert len(CITIES) > 330  # 333 prefecture-level divisions, the 4 municipalities, HK, Macau
    for code, place in CITIES.items():
        assert len(code) == 6 and code.isdigit() and place.province_code in PROVINCES
    # Municipalities and autonomous prefectures read as people write them.
    assert normalize_city("北京市") == "北京" and normalize_province("北京市") == "北京"
    assert normalize_city("延边朝鲜族自治州") == normalize_city("延边") == "延边州"
    assert normalize_province("内蒙古自治区") == "内蒙古"


def test_shared_pinyin_is_settled_by_the_province():
    assert normalize_city("Suzhou") == "苏州"
    assert normalize_city("Suzhou", "安徽") == "宿州"
    assert normalize_city("Taizhou", "Zhejiang") == "台州"
    assert get_province_of_city("台州") == "浙江"


def test_unknown_places_are_kept_as_typed():
    assert normalize_city(" Singapore ") == "Singapore"
    assert normalize_city("") == "" and normalize_province(None) == ""
    assert normalize_place("name", "深圳市") == "深圳市"  # not a place field: untouched


@pytest.mark.django_db
def test_api_service_and_back_office_form_store_the_canonical_form():
    made = create_customer(
        {"name": "A", "city": "Shenzhen", "province": "广东省"}, by=system_actor("tests")
    )
    assert (made.city, made.province) == ("深圳", "广东")
    update_customer(made, {"city": "杭州市"}, by=system_actor("tests"))
    made.refresh_from_db()
    assert (made.city, made.province) == ("杭州", "浙江")  # a known city settles its province
    from django.contrib.admin import site
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.user = User.objects.create_superuser("boss", password="x")
    model_admin = site._registry[Customer]
    form_class = model_admin.get_form(request, made, change=True)
    data = {"name": "A", "kind": "person", "city": "Guangzhou", "province": "", "country": "CN"}
    form = form_class(data, instance=made)
    assert form.is_valid(), form.errors
    model_admin.save_model(request, form.instance, form, change=True)
    made.refresh_from_db()
    assert (made.city, made.province) == ("广州", "广东")
    assert made.field_sources["city"] == "backoffice"


@pytest.mark.django_db
def test_data_migration_canonicalises_stored_places():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("kequn.customers.migrations.0010_canonical_places")
    customer = Customer.objects.create(name="旧", province="广东省", city="深圳市")
    Address.objects.create(customer=customer, province="Guangdong", city="Shenzhen")
    kept = Customer.objects.create(name="外", city="Singapore")
    migration.canonicalise_places(apps, None)
    customer.refresh_from_db()
    kept.refresh_from_db()
    assert (customer.province, customer.city) == ("广东", "深圳")
    assert (Address.objects.get().province, Address.objects.get().city) == ("广东", "深圳")
    assert kept.city == "Singapore"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_imported_and_demo_shenzhen_are_one_segment(tmp_path, client):
    """Regression: imported 广东省/深圳市 rows and demo 广东/深圳 rows meet in city=深圳."""
    from kequn.demo.generator import generate_demo_data
    from kequn.segments.services import count_rule

    generate_demo_data(120, seed=5, today=date(2026, 11, 20), progress=False, chunk_size=64)
    demo_shenzhen = Customer.objects.filter(city="深圳").count()
    assert demo_shenzhen > 0
    assert set(Customer.objects.exclude(city="").values_list("city", flat=True)) <= {
        normalize_city(c) for c in Customer.objects.values_list("city", flat=True)
    }
    path = tmp_path / "c.csv"
    path.write_text(
        "手机,姓名,省份,城市\n13800000001,甲,广东省,深圳市\n13800000002,乙,广东省,Shenzhen\n",
        encoding="utf-8",
    )
    out = StringIO()
    call_command("import", "customers", str(path), "--json", stdout=out)
    assert json.loads(out.getvalue())["inserted"] == 2
    want = demo_shenzhen + 2
    for spelling in ("深圳", "深圳市", "Shenzhen"):
        rule = {"match": "all", "conditions": [{"field": "city", "operator": "eq",
                                                "value": spelling}]}  # fmt: skip
        assert count_rule(rule) == want
    rule = {"match": "all", "conditions": [{"field": "city", "operator": "in",
                                            "value": ["Shenzhen"]},
                                           {"field": "province", "operator": "eq",
                                            "value": "广东省"}]}  # fmt: skip
    assert count_rule(rule) == want
    admin = User.objects.create_superuser("boss", password="x")
    client.force_login(admin)
    listed = client.get("/admin/customers/customer/", {"city": "Shenzhen"})
    assert listed.status_code == 200 and listed.context["cl"].result_count == want
    found = client.get("/api/v1/customers", {"city": "Shenzhen", "limit": 200})
    assert found.status_code == 200 and len(found.json()["items"]) == want
