"""The customers app's personal data: the profile, identities, addresses, consents, tags, links."""

from __future__ import annotations

from kequn.customers.models import (
    Address,
    CompanyContact,
    Consent,
    Customer,
    CustomerTag,
    Identity,
)
from kequn.security.masking import ADDRESS, BIRTHDAY
from kequn.security.personal_data import SUBJECT, register

# The customer itself; the rows below go with it on erasure (on_delete=CASCADE).
register(
    Customer,
    path=SUBJECT,
    export_as="profile",
    position=10,
    audited=True,
    masked={"birthday": BIRTHDAY},
)
register(
    Identity,
    path="customer",
    export_as="identities",
    position=20,
    fields=["id", "customer_id", "kind", "system", "value", "verified", "created_at"],
    audited=True,
)
register(
    Address,
    path="customer",
    export_as="addresses",
    position=30,
    audited=True,
    masked={"line": ADDRESS, "postcode": ADDRESS},
    masked_blank=["postcode"],
)
register(
    Consent,
    path="customer",
    export_as="consents",
    position=40,
    order_by=["recorded_at", "id"],
    audited=True,
)
register(
    CustomerTag,
    path="customer",
    export_as="tags",
    position=50,
    fields=["customer_id", "tag_id", "tag__name", "tag__group__name", "added_at"],
    audited=True,
)
register(
    CompanyContact,
    path=["company", "contact"],
    export_as="company_links",
    position=60,
    fields=["id", "company_id", "company__name", "contact_id", "title", "is_primary", "created_at"],
)
