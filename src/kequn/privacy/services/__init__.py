"""Data-subject rights, one module per job: requests, export, erasure, suppression, restriction
and correction, consent. The names below are the public surface the back office, the API and
the CLI call.
"""

from kequn.privacy.models import PrivacyRequest
from kequn.privacy.services.base import PrivacyError, get_record_ids
from kequn.privacy.services.consent import filter_marketable, withdraw_consent
from kequn.privacy.services.erasure import describe_replay, erase_customer, replay_erasures
from kequn.privacy.services.export import (
    collect_customer_data,
    export_customer_data,
    get_export_dir,
    get_export_path,
    record_download,
    write_export_file,
)
from kequn.privacy.services.requests import (
    compute_deadline,
    execute_request,
    get_deadline_days,
    get_overdue_requests,
    open_request,
    reject_request,
    verify_identity,
)
from kequn.privacy.services.restriction import (
    correct_customer,
    lift_restriction,
    restrict_processing,
)
from kequn.privacy.services.suppression import (
    describe_suppression,
    find_suppressed,
    hash_identity,
    is_suppressed,
)

__all__ = [
    "PrivacyError",
    "PrivacyRequest",
    "collect_customer_data",
    "compute_deadline",
    "correct_customer",
    "describe_replay",
    "describe_suppression",
    "erase_customer",
    "execute_request",
    "export_customer_data",
    "filter_marketable",
    "find_suppressed",
    "get_deadline_days",
    "get_export_dir",
    "get_export_path",
    "get_overdue_requests",
    "get_record_ids",
    "hash_identity",
    "is_suppressed",
    "lift_restriction",
    "open_request",
    "record_download",
    "reject_request",
    "replay_erasures",
    "restrict_processing",
    "verify_identity",
    "withdraw_consent",
    "write_export_file",
]
