"""The ingest app's personal data: merge history, review candidates, quarantined input rows."""

from __future__ import annotations

from kequn.customers.identities import IdentityError, normalize_identity
from kequn.ingest.models import MatchCandidate, Merge, QuarantinedRow
from kequn.security.personal_data import Erase, ErasureContext, register


def _is_identity_of(text: str, values: frozenset[str]) -> bool:
    for kind in ("email", "phone"):
        try:
            normalised = normalize_identity(kind, text)
        except IdentityError:
            continue
        if normalised in values:
            return True
    return False


def erase_quarantined(context: ErasureContext) -> int:
    """Delete quarantined import rows that carry one of the person's identity values."""
    values = context.identity_values
    if not values:
        return 0
    doomed = []
    for pk, row in QuarantinedRow.objects.values_list("pk", "values").iterator(chunk_size=2000):
        cells = row.values() if isinstance(row, dict) else []
        for cell in cells:
            text = str(cell).strip()
            if text and (text in values or text.lower() in values or _is_identity_of(text, values)):
                doomed.append(pk)
                break
    for start in range(0, len(doomed), 1000):
        QuarantinedRow.objects.filter(pk__in=doomed[start : start + 1000]).delete()
    return len(doomed)


register(
    Merge,
    path=["target", "absorbed"],
    export_as="merge_history",
    position=160,
    fields=[
        "id",
        "target_id",
        "absorbed_id",
        "rule",
        "score",
        "snapshot",
        "created_at",
        "undone_at",
    ],
)
# Review candidates only pair records up for a person to look at: not exported, and they go
# with the customer rows.
register(MatchCandidate, path=["left", "right"], position=162)
# Rejected rows hold the person only as text: found by their identity values on erasure.
register(
    QuarantinedRow,
    path=[],
    position=165,
    erase=Erase.CUSTOM,
    eraser=erase_quarantined,
    erase_count="quarantined_rows",
)
