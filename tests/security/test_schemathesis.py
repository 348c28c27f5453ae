"""The published OpenAPI schema tells the truth: schemathesis with every check, per role.

tests/security/test_fuzz_api.py fuzzes for server errors and response shapes; this module
adds the checks that compare the server with its schema in both directions — a request the
schema calls valid must not be refused with 4xx validation errors (positive data
acceptance), and one it calls invalid must not be accepted (negative data rejection) — so
limits (lengths, ranges, date bounds, patterns) and 422 answers are described, not guessed.
Each role (administrator, marketing, sales, service, analyst, auditor) runs every operation
with a small, derandomised budget.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from kequn.security.roles import ROLES
from tests.security.test_fuzz_api import api_schema, make_role_headers, real_ids

__all__ = ["api_schema", "real_ids"]  # fixtures shared with the fuzzing module

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
EXAMPLES = 6


def check_operation(operation, headers: dict[str, str], mode: GenerationMode) -> None:
    """Run every check on a few generated cases of one operation; raise on a failure."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_schema_holds_for_role(role, api_schema, real_ids):
    headers = make_role_headers(role)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                check_operation(operation, headers, mode)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:2000]}")
    assert not failures, f"{len(failures)} schemathesis failure(s) as {role}:\n\n" + "\n\n".join(
        failures
    )
