"""The demo's loyalty programme: members in every tier, balances equal to the ledger."""

from __future__ import annotations

from kequn.demo.generator import generate_demo_data
from kequn.demo.loyalty import TIERS, create_demo_loyalty
from kequn.loyalty import selectors
from kequn.loyalty.models import Member, Redemption
from tests.loyalty.conftest import BY


def test_demo_programme_has_members_in_every_tier(db):
    generate_demo_data(150, seed=5, progress=False, chunk_size=64)
    summary = create_demo_loyalty(by=BY, seed=5)
    assert summary.startswith("Loyalty: ")
    for code, *_ in TIERS:
        assert Member.objects.filter(tier__code=code).exists(), code
    assert Redemption.objects.exists()
    assert list(selectors.find_differences()) == []
    assert "already has members" in create_demo_loyalty(by=BY, seed=5)
