"""The segments app's personal data: memberships (dropped on restriction) and their history."""

from __future__ import annotations

from kequn.security.personal_data import register
from kequn.segments.models import MembershipChange, SegmentMember

register(
    SegmentMember,
    path="customer",
    export_as="segment_memberships",
    position=130,
    fields=["segment_id", "segment__name", "customer_id", "added_at"],
    derived=True,
)
register(
    MembershipChange,
    path="customer",
    export_as="segment_history",
    position=140,
    fields=["segment_id", "segment__name", "customer_id", "change", "changed_at"],
    order_by=["changed_at", "id"],
)
