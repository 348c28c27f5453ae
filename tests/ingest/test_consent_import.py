"""Marketing permissions and tags arrive with the data: each preset carries them over."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from kequn.customers.models import Consent, Customer, CustomerTag, Identity
from kequn.ingest.models import QuarantinedRow

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    out = StringIO()
    call_command("import", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def consents_of(email: str) -> dict[tuple[str, str], bool]:
    customer = Identity.objects.get(kind="email", value=email).customer
    current = {}
    for c in Consent.objects.filter(customer=customer).order_by("recorded_at", "id"):
        current[(c.channel, c.purpose)] = c.granted
    return current


def tags_of(email: str) -> set[str]:
    customer = Identity.objects.get(kind="email", value=email).customer
    return set(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


SHOPIFY = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Accepts SMS Marketing,Tags\n"
    '1001,Ann,Lee,ann@example.com,yes,no,"VIP, wholesale"\n'
    "1002,Bo,Wu,bo@example.com,no,,\n"
    "1003,Cy,Ma,cy@example.com,,yes,newsletter\n"
)


def test_shopify_permissions_and_tags_become_consents_and_tags(write):
    summary = run("customers", str(write("shopify.csv", SHOPIFY)), "--mapping", "shopify")
    assert summary["inserted"] == 3
    assert consents_of("ann@example.com") == {
        ("email", "marketing"): True,
        ("sms", "marketing"): False,
    }
    assert consents_of("bo@example.com") == {("email", "marketing"): False}
    assert consents_of("cy@example.com") == {("sms", "marketing"): True}  # empty: no decision
    assert tags_of("ann@example.com") == {"VIP", "wholesale"}
    assert tags_of("cy@example.com") == {"newsletter"}
    consent = Consent.objects.filter(customer__identities__value="ann@example.com").first()
    assert consent.source.startswith("shopify import #") and "shopify.csv" in consent.source


def test_reimport_appends_only_changes(write):
    path = write("shopify.csv", SHOPIFY)
    run("customers", str(path), "--mapping", "shopify")
    before = (Consent.objects.count(), CustomerTag.objects.count())
    run("customers", str(path), "--mapping", "shopify")
    assert (Consent.objects.count(), CustomerTag.objects.count()) == before
    # Ann unsubscribed in Shopify since: one withdrawal row is appended, history kept.
    changed = SHOPIFY.replace("ann@example.com,yes,no", "ann@example.com,no,no")
    run("customers", str(write("shopify2.csv", changed)), "--mapping", "shopify")
    assert Consent.objects.count() == before[0] + 1
    assert consents_of("ann@example.com")[("email", "marketing")] is False


def test_crm_opt_out_columns_withdraw_consent(write):
    salesforce = write(
        "sf.csv",
        "Id,FirstName,LastName,Email,HasOptedOutOfEmail,DoNotCall\n"
        "003A,Di,Xu,di@example.com,true,false\n"
        "003B,Ed,Yu,ed@example.com,0,1\n",
    )
    run("customers", str(salesforce), "--mapping", "salesforce")
    assert consents_of("di@example.com") == {
        ("email", "marketing"): False,
        ("phone", "marketing"): True,
    }
    assert consents_of("ed@example.com") == {
        ("email", "marketing"): True,
        ("phone", "marketing"): False,
    }
    hubspot = write(
        "hs.csv",
        "Record ID,Email,Marketing contact status,Unsubscribed from all email\n"
        "1,fay@example.com,Marketing contact,false\n"
        "2,gu@example.com,Marketing contact,true\n"
        "3,han@example.com,Non-marketing contact,\n",
    )
    run("customers", str(hubspot), "--mapping", "hubspot")
    assert consents_of("fay@example.com") == {("email", "marketing"): True}
    assert consents_of("gu@example.com") == {("email", "marketing"): False}  # opt-out wins
    assert consents_of("han@example.com") == {("email", "marketing"): False}
    zoho = write("z.csv", "Record Id,Email,Email Opt Out\n9,ivy@example.com,TRUE\n")
    run("customers", str(zoho), "--mapping", "zoho")
    assert consents_of("ivy@example.com") == {("email", "marketing"): False}
    fxiaoke = write(
        "fx.csv",
        "客户编号,客户名称,邮件,标签,是否退订短信\nK1,金,jin@example.com,大客户，经销商,是\n",
    )
    run("customers", str(fxiaoke), "--mapping", "fxiaoke")
    assert consents_of("jin@example.com") == {("sms", "marketing"): False}
    assert tags_of("jin@example.com") == {"大客户", "经销商"}


def test_an_unreadable_permission_quarantines_the_row(write):
    path = write("s.csv", SHOPIFY.replace("bo@example.com,no", "bo@example.com,maybe"))
    summary = run("customers", str(path), "--mapping", "shopify")
    assert summary["quarantined"] == 1 and summary["reasons"] == {"invalid_flag": 1}
    row = QuarantinedRow.objects.get()
    assert row.field == "email_marketing" and "'maybe'" in row.message
    assert not Identity.objects.filter(value="bo@example.com").exists()


def test_a_restricted_customer_gets_no_grant_but_a_withdrawal(write):
    path = write("shopify.csv", SHOPIFY)
    run("customers", str(path), "--mapping", "shopify")
    Customer.objects.filter(identities__value="cy@example.com").update(processing_restricted=True)
    grant = SHOPIFY.replace("cy@example.com,,yes", "cy@example.com,yes,no")
    run("customers", str(write("again.csv", grant)), "--mapping", "shopify")
    assert consents_of("cy@example.com") == {("sms", "marketing"): False}
