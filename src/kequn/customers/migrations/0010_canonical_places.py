"""Put stored provinces and cities in their canonical short form (广东省 → 广东, 深圳市 → 深圳)."""

from django.db import migrations


def canonicalise_places(apps, schema_editor):
    """Rewrite each distinct stored spelling once, so a million rows take a few UPDATEs."""
    from kequn.customers.places import normalize_city, normalize_province  # noqa: PLC0415 -- loaded when the migration runs, not when it is listed

    for name in ("Customer", "Address"):
        model = apps.get_model("customers", name)
        rows = model.objects.order_by().values_list("province", "city").distinct()
        for province, city in list(rows):
            new_province = normalize_province(province)[:50]
            new_city = normalize_city(city, province)[:50]
            if (new_province, new_city) != (province, city):
                model.objects.filter(province=province, city=city).update(
                    province=new_province, city=new_city
                )


class Migration(migrations.Migration):
    dependencies = [("customers", "0009_customer_field_sources")]

    operations = [migrations.RunPython(canonicalise_places, migrations.RunPython.noop)]
