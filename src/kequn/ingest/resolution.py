"""Probabilistic record matching with Splink (DuckDB): scores pairs, changes nothing."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import pandas as pd

from kequn.customers.models import Address, Customer, Identity
from kequn.ingest.places import normalize_city

UPPER = 0.95
LOWER = 0.60


@dataclass(frozen=True)
class ScoredPair:
    left: int
    right: int
    probability: float
    details: dict


def load_profiles() -> pd.DataFrame:
    """Return the surviving person records with the fields the matcher compares."""
    rows = {
        pk: {"unique_id": pk, "name": name or None, "birthday": b.isoformat() if b else None,
             "city": normalize_city(city) or None, "address": None, "phone": None, "email": None}
        for pk, name, b, city in Customer.objects.filter(
            merged_into__isnull=True, kind=Customer.Kind.PERSON
        ).values_list("pk", "name", "birthday", "city").iterator(chunk_size=5000)
    }  # fmt: skip
    for customer_id, kind, value in (
        Identity.objects.filter(kind__in=("phone", "email"), customer__merged_into__isnull=True)
        .values_list("customer_id", "kind", "value")
        .iterator(chunk_size=5000)
    ):
        if customer_id in rows and rows[customer_id][kind] is None:
            rows[customer_id][kind] = value
    for customer_id, line in (
        Address.objects.exclude(line="")
        .order_by("-is_default", "pk")
        .values_list("customer_id", "line")
    ):
        if customer_id in rows and rows[customer_id]["address"] is None:
            rows[customer_id]["address"] = line.replace(" ", "")
    frame = pd.DataFrame(list(rows.values()), columns=["unique_id", "name", "birthday", "city",
                                                       "address", "phone", "email"])  # fmt: skip
    return frame


def _settings(n_records: int):
    import splink.comparison_level_library as cll  # noqa: PLC0415 -- Splink loads on use only
    import splink.comparison_library as cl  # noqa: PLC0415 -- Splink loads on use only
    from splink import SettingsCreator, block_on  # noqa: PLC0415 -- Splink loads on use only

    birthday = cl.CustomComparison(
        output_column_name="birthday",
        comparison_levels=[
            cll.NullLevel("birthday"),
            cll.ExactMatchLevel("birthday"),
            cll.CustomLevel(
                "substr(birthday_l, 1, 4) = substr(birthday_r, 1, 4) AND "
                "substr(birthday_l, 6, 2) = substr(birthday_r, 9, 2) AND "
                "substr(birthday_l, 9, 2) = substr(birthday_r, 6, 2)",
                label_for_charts="day and month swapped",
            ),
            cll.CustomLevel(
                "substr(birthday_l, 1, 4) = substr(birthday_r, 1, 4)", label_for_charts="same year"
            ),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.LevenshteinAtThresholds("name", [1]),
            birthday,
            cl.ExactMatch("city"),
            cl.JaroWinklerAtThresholds("address", [0.9]),
            cl.ExactMatch("phone"),
            cl.ExactMatch("email"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("birthday"),
            block_on("name"),
            block_on("city", "substr(name, 1, 1)"),
        ],
        retain_intermediate_calculation_columns=False,
        probability_two_random_records_match=1 / (20 * max(n_records, 2)),
    )


def score_pairs(frame: pd.DataFrame, lower: float = LOWER, seed: int = 42) -> list[ScoredPair]:
    """Return candidate pairs with their match probability at or above `lower`."""
    if len(frame) < 2:
        return []
    from splink import Linker, block_on  # noqa: PLC0415 -- Splink loads on use only
    from splink.backends.duckdb import DuckDBAPI  # noqa: PLC0415 -- Splink loads on use only

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(frame), _settings(len(frame)), log_level=logging.ERROR)
    # The prior is fixed (about one duplicate per 20 records, the rate of a typical merge of
    # two CRMs) rather than counted, so that re-running on already-merged data stays stable.
    linker.training.estimate_u_using_random_sampling(max_pairs=min(2e6, len(frame) ** 2), seed=seed)
    for rule in (block_on("birthday"), block_on("name")):
        # Too few pairs to train on leaves the defaults in place, which is fine.
        with contextlib.suppress(Exception):
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=lower).as_pandas_dataframe()
    pairs = []
    for row in predictions.itertuples(index=False):
        left, right = sorted((int(row.unique_id_l), int(row.unique_id_r)))
        details = {c: [getattr(row, f"{c}_l", None), getattr(row, f"{c}_r", None)]
                   for c in ("name", "birthday", "city", "address")}  # fmt: skip
        pairs.append(ScoredPair(left, right, float(row.match_probability), details))
    return pairs
