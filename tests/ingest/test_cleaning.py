from datetime import date
from decimal import Decimal

import pytest

from kequn.ingest.cleaning import (
    CleaningError,
    clean_amount,
    clean_city,
    clean_date,
    clean_datetime,
    clean_email,
    clean_name,
    clean_phone,
    clean_province,
    clean_quantity,
    join_name,
)


@pytest.mark.parametrize(
    "raw",
    [
        "138 0013 8000",
        "13800138000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "８６１３８００１３８０００"[2:],
    ],
)
def test_phone_to_e164_with_default_region(raw):
    assert clean_phone(raw) == "+8613800138000"


def test_phone_region_is_configurable(monkeypatch):
    monkeypatch.setenv("KEQUN_DEFAULT_REGION", "US")
    assert clean_phone("(650) 253-0000") == "+16502530000"


def test_bad_phone_and_email_are_rejected_with_reason():
    with pytest.raises(CleaningError) as exc:
        clean_phone("12")
    assert exc.value.reason == "invalid_phone"
    with pytest.raises(CleaningError) as exc:
        clean_email("no-at-sign.example.com")
    assert exc.value.reason == "invalid_email"


def test_email_normalised():
    assert clean_email(" Ada.L@Example.COM ") == "ada.l@example.com"
    assert clean_email("ＡＤＡ@ｅｘａｍｐｌｅ.com") == "ada@example.com"


def test_names_trimmed_and_full_width_folded():
    assert clean_name("　张 伟 ") == "张伟"
    assert clean_name("  Ada   Lovelace ") == "Ada Lovelace"
    assert clean_name("ＪＯＨＮ") == "JOHN"
    assert join_name("伟", "张") == "张伟"
    assert join_name("Ada", "Lovelace") == "Ada Lovelace"


@pytest.mark.parametrize(
    "raw", ["2024年3月5日", "2024/3/5", "2024-03-05", "20240305", "2024.03.05", "Mar 5, 2024",
            "5 March 2024", "2024-03-05T08:00:00Z", "3/5/2024"],
)  # fmt: skip
def test_dates_in_common_formats(raw):
    assert clean_date(raw) == date(2024, 3, 5)


def test_day_first_when_unambiguous_and_invalid_dates():
    assert clean_date("15/03/2024") == date(2024, 3, 15)
    for bad in ("2024-02-30", "yesterday", "2024/13/01"):
        with pytest.raises(CleaningError) as exc:
            clean_date(bad)
        assert exc.value.reason == "invalid_date"


def test_datetime_reads_naive_times_in_business_zone():
    value = clean_datetime("2024/3/5 10:30", "Asia/Shanghai")
    assert value.isoformat() == "2024-03-05T10:30:00+08:00"


@pytest.mark.parametrize(
    ("raw", "amount", "currency"),
    [("¥1,299.00", "1299.00", "CNY"), ("￥88", "88.00", "CNY"), ("1.299,00 €", "1299.00", "EUR"),
     ("$1,000,000.50", "1000000.50", "USD"), ("(12.50)", "-12.50", ""), ("RMB 35", "35.00", "CNY"),
     ("12,5", "12.50", "")],
)  # fmt: skip
def test_amounts_with_symbols_and_separators(raw, amount, currency):
    assert clean_amount(raw) == (Decimal(amount), currency)


def test_quantities():
    assert clean_quantity("3") == 3
    with pytest.raises(CleaningError) as exc:
        clean_quantity("-2")
    assert exc.value.reason == "negative_quantity"


@pytest.mark.parametrize("raw", ["上海", "上海市", "Shanghai", " shanghai ", "SH"])
def test_provinces_have_one_canonical_form(raw):
    assert clean_province(raw) == "上海"


@pytest.mark.parametrize(
    ("raw", "city"), [("深圳", "深圳"), ("Shenzhen", "深圳"), ("Xi'an", "西安"), ("深圳市", "深圳")]
)
def test_cities_have_one_canonical_form(raw, city):
    assert clean_city(raw) == city
