"""One score row per customer: RFM, lifecycle, P(alive), expected purchases, CLV, churn risk."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from . import churn, clv, lifecycle, rfm, valuemodels
from .engine import DailyPurchases, days_per_unit, prepare_daily, summarize_customers, to_date
from .errors import AnalyticsInputError, InsufficientDataError
from .io import check_not_future, normalize_transactions
from .side import SideWork

Progress = Callable[[str], None]


def as_datetime(now: date | datetime | str) -> datetime:
    if isinstance(now, datetime):
        return now
    d = to_date(now)
    # A bare date means "end of that day": purchases dated that day are in the past.
    return datetime(d.year, d.month, d.day, 23, 59, 59, 999999)  # noqa: DTZ001 -- naive wall-clock time, like the transactions analytics reads


def score_customers(
    transactions: Any,
    now: date | datetime | str,
    customers: Any = None,
    *,
    time_unit: str = "week",
    churn_horizon_days: int = 90,
    clv_months: int = 12,
    monthly_discount_rate: float = 0.01,
    segment_rules: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
    segment_labels: Mapping[str, tuple[str, str]] | None = None,
    thresholds: lifecycle.LifecycleThresholds | None = None,
    backend: Any = None,
    progress: Progress | None = None,
    count_model: str = "auto",
    spend_model: str = "auto",
    summary: pd.DataFrame | None = None,
    bgnbd_fit: clv.FittedModel | None = None,
    side: SideWork | None = None,
) -> pd.DataFrame:
    """Return one row per customer with every score, as of ``now``.

    Columns: customer_id, recency_days, frequency, monetary, r/f/m_score, rfm_score,
    segment (+ _en/_zh), lifecycle_stage (+ _en/_zh), p_alive, expected_purchases
    (next ``churn_horizon_days``), expected_spend, clv (``clv_months`` months,
    discounted monthly), churn_risk, churn_reasons_en/zh. ``segment_rules``,
    ``segment_labels`` and ``thresholds`` override the defaults (see
    :mod:`kequn.analytics.config` for reading them from a file). Customers in ``customers``
    without purchases appear as prospects with empty scores. Model parameters and
    notes (e.g. "too little data for BG/NBD") are in ``result.attrs["models"]``.

    ``count_model`` (P(alive), expected purchases, CLV: bgnbd, mbgnbd or paretonbd) and
    ``spend_model`` (order value: repeat, all or first; see kequn.analytics.valuemodels)
    default to "auto": the candidates are fitted one churn horizon ago and judged on the
    horizon since (valuemodels.compare_value_models); the winners are refitted on all data.

    Scales to ~10M transactions: transactions are netted per customer and day once in
    DuckDB (or the given Ibis backend) and summarised from there, the models fit on
    compressed per-customer statistics, and churn trains on at most
    ``churn.TRAINING_CUSTOMERS`` customers per snapshot.

    ``summary`` (summarize_customers of the same transactions at ``now``'s day, with
    rhythm) and ``bgnbd_fit`` (BG/NBD fitted on it) save a caller that has them already
    from computing them again; they must be of the same data, or the scores are wrong.
    ``side`` (a SideWork, e.g. `kequn analyze`'s) trains the churn model and writes the
    churn reasons in a second process while this one judges, fits and predicts; the
    scores are the same.
    """
    say = progress or (lambda _msg: None)
    now_dt = as_datetime(now)
    end = now_dt.date()
    tx = transactions
    netted = isinstance(tx, DailyPurchases)  # from prepare_daily: checked when it was read
    if not netted and not isinstance(tx, pa.Table) and type(tx).__module__.split(".")[0] != "ibis":
        tx = normalize_transactions(tx)
    if isinstance(tx, pa.Table):
        check_not_future(tx, now_dt)
        if tx.num_rows == 0:
            raise AnalyticsInputError("no transactions to analyse")
    unit = days_per_unit(time_unit)
    models: dict[str, Any] = {"now": now_dt.isoformat(), "time_unit": time_unit, "notes": []}

    say("aggregating customers")
    # Netted once: the scoring summary and every churn snapshot below read the same days.
    tx = prepare_daily(tx, backend)
    if summary is None:
        summary = summarize_customers(tx, end, time_unit=time_unit, backend=backend)
    if summary.empty:
        raise AnalyticsInputError(f"no purchases on or before {end}")
    out = rfm.score_rfm(summary, rules=segment_rules, labels=segment_labels)

    training: tuple[pd.DataFrame, np.ndarray] | InsufficientDataError | None = None
    trained = False
    if side is not None:
        # The churn snapshots first, so that the side trains the model while this process
        # judges, fits and predicts the value models.
        say("building the churn training set")
        training = _churn_training_set(tx, end, churn_horizon_days, time_unit, backend)
        if isinstance(training, tuple):
            x_train, y_train = training  # the model's inputs only, all numbers: cheap to pickle
            side.submit(_train_churn_model, x_train[churn.FEATURES], y_train)
            trained = True
    say("choosing value models")
    count_model, spend_model = choose_value_models(
        tx, summary, end, churn_horizon_days, time_unit, backend, count_model, spend_model, models
    )
    say("fitting BG/NBD")
    x = summary["x"].to_numpy(float)
    t_x = summary["t_x"].to_numpy(float)
    T = summary["T"].to_numpy(float)  # noqa: N806 - the papers' name
    horizon_units = churn_horizon_days / unit
    # BG/NBD's parameters feed the churn model's features.
    params, value_params, count_model = fit_count_models(
        x, t_x, T, count_model, models, bgnbd_fit=bgnbd_fit
    )
    say("fitting Gamma-Gamma")
    gg = None
    try:
        gg = valuemodels.fit_spend_model(spend_model, summary)
        models["gammagamma"] = gg.to_dict()
    except InsufficientDataError as exc:
        models["notes"].append(f"Gamma-Gamma not fitted: {exc}")
    models["value_models"]["used"] = {"count_model": count_model, "spend_model": spend_model}

    say("predicting P(alive), purchases, spend and CLV")
    if value_params is not None:
        out["p_alive"] = clv.probability_alive(count_model, value_params, x, t_x, T)
        out["expected_purchases"] = clv.expected_purchases(
            count_model, value_params, horizon_units, x, t_x, T
        )
    else:
        out["p_alive"] = np.nan
        out["expected_purchases"] = np.nan
    if gg is not None:
        out["expected_spend"] = valuemodels.expected_order_value(spend_model, gg.params, summary)
    else:
        out["expected_spend"] = summary["monetary_avg"].to_numpy(float)
    if value_params is not None:
        out["clv"] = clv.compute_clv(
            value_params,
            out["expected_spend"].to_numpy(float),
            x,
            t_x,
            T,
            periods=clv_months,
            discount_rate=monthly_discount_rate,
            days_per_unit=unit,
            model=count_model,
        )
    else:
        out["clv"] = np.nan

    say("assigning lifecycle stages")
    stages = lifecycle.assign_lifecycle_stages(
        summary, p_alive=out["p_alive"].to_numpy(float), thresholds=thresholds
    )
    out = out.merge(
        stages[["customer_id", "lifecycle_stage", "lifecycle_stage_en", "lifecycle_stage_zh"]],
        on="customer_id",
        how="left",
    )

    say("training churn model")  # with a side process: collecting the model trained there
    features = churn.build_churn_features(summary, params, horizon_units)
    if training is None:
        training = _churn_training_set(tx, end, churn_horizon_days, time_unit, backend)
    # The reasons quote the P(alive) shown beside them, not BG/NBD's (the churn model's input).
    reasons_input = features.select_dtypes(include=["number", "bool"]).assign(
        p_alive=out["p_alive"].to_numpy(float)
    )
    reasons_beside = False

    def start_reasons() -> None:
        nonlocal reasons_beside
        if side is not None:  # idle once the model is in: the reasons while this one predicts
            side.submit(churn.explain_churn_risk, reasons_input)
            reasons_beside = True

    risk, churn_info = _score_churn(
        training,
        features,
        end,
        churn_horizon_days,
        side if trained else None,
        meanwhile=start_reasons,
    )
    models["churn"] = churn_info
    if risk is None and params is not None:
        models["notes"].append("churn risk falls back to BG/NBD P(no purchase in horizon)")
        risk = features["p_no_purchase"].to_numpy(float)
    out["churn_risk"] = risk if risk is not None else np.nan
    if reasons_beside:
        en, zh = side.result()[0]  # type: ignore[union-attr]
    else:
        en, zh = churn.explain_churn_risk(reasons_input)
    out["churn_reasons_en"] = en
    out["churn_reasons_zh"] = zh

    if customers is not None:
        ids = lifecycle._customer_ids(customers, like=out["customer_id"])
        missing = pd.Index(ids).difference(pd.Index(out["customer_id"]))
        if len(missing):
            prospects = pd.DataFrame({"customer_id": missing.to_numpy()})
            prospects["lifecycle_stage"] = "prospect"
            prospects["lifecycle_stage_en"] = lifecycle.STAGE_LABELS["prospect"][0]
            prospects["lifecycle_stage_zh"] = lifecycle.STAGE_LABELS["prospect"][1]
            prospects["frequency"] = 0
            out = pd.concat([out, prospects], ignore_index=True)
    out = out.sort_values("customer_id", kind="stable").reset_index(drop=True)
    out.attrs["models"] = models
    return out


# Candidates "auto" tries in a refresh. Pareto/NBD is left to `kequn analyze`: its
# likelihood has no analytic gradient here and costs seconds per fit at a million customers.
AUTO_COUNT_MODELS = ("bgnbd", "mbgnbd")


def fit_count_models(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,  # noqa: N803 - the papers' name
    count_model: str,
    models: dict[str, Any],
    *,
    bgnbd_fit: Any = None,
) -> tuple[Any, Any, str]:
    """Fit BG/NBD and the chosen purchase model; return both parameter sets and the model used.

    The chosen model falls back to BG/NBD when it cannot be fitted; fits and notes go to
    ``models``.
    """
    params = None
    try:
        fit = bgnbd_fit or clv.fit_bgnbd(x, t_x, T)
        params = fit.params
        models["bgnbd"] = fit.to_dict()
    except InsufficientDataError as exc:
        models["notes"].append(f"BG/NBD not fitted: {exc}")
    value_params = params if count_model == "bgnbd" else None
    if count_model != "bgnbd" and params is not None:
        try:
            value_fit = clv.fit_count_model(count_model, x, t_x, T)
            value_params = value_fit.params
            models[count_model] = value_fit.to_dict()
        except InsufficientDataError as exc:
            models["notes"].append(f"{count_model} not fitted: {exc}")
    if value_params is None:
        return params, params, "bgnbd"
    return params, value_params, count_model


def choose_value_models(
    tx: Any,
    summary: pd.DataFrame,
    end: date,
    horizon_days: int,
    time_unit: str,
    backend: Any,
    count_model: str,
    spend_model: str,
    models: dict[str, Any],
) -> tuple[str, str]:
    """Return the purchase and order-value models to score with; "auto" judges them on a holdout."""
    for given, known in (
        (count_model, clv.COUNT_MODELS),
        (spend_model, valuemodels.SPEND_MODELS),
    ):
        if given != "auto" and given not in known:
            raise AnalyticsInputError(
                f"unknown value model {given!r}; use auto or one of {', '.join(known)}"
            )
    info: dict[str, Any] = {"requested": {"count_model": count_model, "spend_model": spend_model}}
    models["value_models"] = info
    if count_model != "auto" and spend_model != "auto":
        return count_model, spend_model
    chosen_count = valuemodels.DEFAULT_COUNT_MODEL if count_model == "auto" else count_model
    chosen_spend = valuemodels.DEFAULT_SPEND_MODEL if spend_model == "auto" else spend_model
    cut = end - timedelta(days=horizon_days)
    try:
        first_day = summary["first_day"].min()
        if first_day is None or cut <= first_day:
            raise InsufficientDataError(f"no history before {cut} to judge the value models on")
        calibration = summarize_customers(
            tx, cut, end, time_unit=time_unit, backend=backend, with_rhythm=False
        )
        comparison = valuemodels.compare_value_models(
            calibration,
            horizon_days / days_per_unit(time_unit),
            count_models=AUTO_COUNT_MODELS if count_model == "auto" else (count_model,),
            spend_models=valuemodels.SPEND_MODELS if spend_model == "auto" else (spend_model,),
        )
    except (InsufficientDataError, KeyError) as exc:
        info["note"] = f"value models not judged ({exc}); defaults used"
        return chosen_count, chosen_spend
    info["holdout"] = {"calibration_end": cut.isoformat(), "holdout_end": end.isoformat()}
    info["comparison"] = comparison
    return comparison.get("count_model", chosen_count), comparison.get("spend_model", chosen_spend)


def _churn_training_set(
    tx: Any, end: date, horizon_days: int, time_unit: str, backend: Any
) -> tuple[pd.DataFrame, np.ndarray] | InsufficientDataError:
    """Return the churn features and labels at ``end - horizon``, or why there are none."""
    try:
        x_train, y_train = churn.build_training_set(
            tx, end - timedelta(days=horizon_days), horizon_days, time_unit, backend
        )
    except InsufficientDataError as exc:
        return exc
    if len(y_train) < 100:
        cut = end - timedelta(days=horizon_days)
        return InsufficientDataError(
            f"churn: {len(y_train)} customers bought before {cut} (need 100)"
        )
    return x_train, y_train


def _train_churn_model(x_train: pd.DataFrame, y_train: np.ndarray) -> Any:
    """Return the churn model trained on one OpenMP thread (see _score_churn)."""
    # One OpenMP thread: on a shared or busy host the boosting's spinning threads made
    # training 100x slower (294 s against about 3 s at 150,000 rows on two loaded cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        return churn.train_churn_model(x_train, y_train)


def _score_churn(
    training: tuple[pd.DataFrame, np.ndarray] | InsufficientDataError,
    features: pd.DataFrame,
    end: date,
    horizon_days: int,
    side: SideWork | None,
    *,
    meanwhile: Callable[[], None] = lambda: None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Train at ``end - horizon`` with labels up to ``end`` (or collect the side's training).

    ``meanwhile`` is called once the model is in, before predicting. Returns (risk or None, info).
    """
    train_cut = end - timedelta(days=horizon_days)
    info: dict[str, Any] = {
        "train_cutoff": train_cut.isoformat(),
        "label_end": end.isoformat(),
        "horizon_days": horizon_days,
    }
    try:
        if isinstance(training, InsufficientDataError):
            raise training
        x_train, y_train = training
        model = side.result()[0] if side is not None else _train_churn_model(x_train, y_train)
        info.update(n_train=len(y_train), train_churn_rate=float(y_train.mean()))
        meanwhile()
        with threadpool_limits(limits=1, user_api="openmp"):
            return churn.predict_churn(model, features), info
    except InsufficientDataError as exc:
        info["skipped"] = str(exc)
        return None, info
