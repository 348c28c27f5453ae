"""The privacy app's personal data: the person's own requests, and the export files they got."""

from __future__ import annotations

from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.export import delete_export_files
from kequn.security.personal_data import Erase, ErasureContext, register


def erase_requests(context: ErasureContext) -> int:
    """Delete the person's export files and detach their requests (kept as proof of handling)."""
    deleted = delete_export_files(context.customer_ids)
    PrivacyRequest.objects.filter(customer_id__in=context.customer_ids).update(customer=None)
    return deleted


register(
    PrivacyRequest,
    # The subject's id stays when the customer link is cut, so later exports still find them.
    path="subject_ref",
    export_as="privacy_requests",
    position=170,
    fields=[
        "id",
        "type",
        "status",
        "channel",
        "received_at",
        "deadline",
        "identity_method",
        "identity_verified_at",
        "completed_at",
        "rejection_reason",
    ],
    erase=Erase.CUSTOM,
    eraser=erase_requests,
    erase_count="export_files",
)
