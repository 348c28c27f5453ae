"""Fixtures of the feedback tests: an SMTP server the invitations go to, a customer with email."""

from __future__ import annotations

import pytest

from kequn.customers.services import IdentityInput, create_customer
from kequn.security.actors import system_actor
from tests.engage.peers import SMTPSink

BY = system_actor("tests")


@pytest.fixture
def smtp(settings):
    """Return an SMTP sink the email channel sends to."""
    with SMTPSink() as sink:
        settings.KEQUN_EMAIL_URL = sink.url()
        settings.KEQUN_EMAIL_FROM = "客群 <care@shop.example>"
        settings.KEQUN_EMAIL_CONNECTIONS = 1
        settings.KEQUN_EMAIL_RATE = 0
        settings.KEQUN_DKIM_KEY_FILE = ""
        settings.KEQUN_DKIM_SELECTOR = ""
        settings.KEQUN_PUBLIC_URL = "https://crm.shop.example"
        yield sink


def make_customer(email: str = "", language: str = "zh-hans", **profile):
    """Create a customer, with an email address when given."""
    identities = [IdentityInput("email", email)] if email else []
    return create_customer(
        {"name": profile.pop("name", "王芳"), "preferred_language": language, **profile},
        identities,
        by=BY,
    )
