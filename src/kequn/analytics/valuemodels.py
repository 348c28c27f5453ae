# ruff: noqa: N806 - T is the papers' name
"""Choose the purchase and order-value models by how well they predict a holdout period.

Purchase models (P(alive), expected purchases): BG/NBD, MBG/NBD and Pareto/NBD
(kequn.analytics.clv). BG/NBD lets a customer drop out only after a repeat purchase, so
every one-time buyer has P(alive) = 1; MBG/NBD and Pareto/NBD let them drop out too.

Order-value models (Gamma-Gamma, Fader & Hardie 2013):

* ``repeat`` — the paper's convention: fitted on repeat purchases only; a one-time buyer
  gets the population mean, whatever their one order was;
* ``all`` — fitted on every purchase day, the first included; a one-time buyer's own
  order is shrunk toward the population mean by the fitted weight p/(p+q-1);
* ``first`` — the paper's model for repeat buyers; a one-time buyer's value is predicted
  from their one order by what it foretold for repeat buyers: log(repeat mean) regressed
  on log(first order), a slope below 1 being the shrinkage toward the population
  (with Duan's smearing to return to a mean, not a median).

Judged on the holdout by decile: customers are ranked by the prediction, cut into ten
groups of equal size, and each group's mean prediction compared with its mean outcome.
The error is the customer-weighted mean absolute gap over the mean outcome (0 is perfect).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from . import clv
from .errors import InsufficientDataError

SPEND_MODELS = ("repeat", "all", "first")
# Chosen on CDNOW (1997-09-30 / 1998-06-30) and the demo shop (see README, "Customer
# value analytics"): MBG/NBD and the all-purchases order value won both holdouts.
DEFAULT_COUNT_MODEL = "mbgnbd"
DEFAULT_SPEND_MODEL = "all"


def fit_spend_model(model: str, summary: pd.DataFrame) -> clv.FittedModel:
    """Fit the named order-value model on a summary from summarize_customers."""
    if model == "repeat":
        rep = summary[summary["x"] > 0]
        return clv.fit_gammagamma(rep["x"], rep["repeat_avg"])
    if model == "all":
        fit = clv.fit_gammagamma(summary["frequency"], summary["monetary_avg"])
        fit.name = "gammagamma_all"
        return fit
    if model == "first":
        rep = summary[summary["x"] > 0]
        fit = clv.fit_gammagamma(rep["x"], rep["repeat_avg"])
        fit.name = "gammagamma_first"
        fit.params |= fit_first_order_regression(rep["first_amount"], rep["repeat_avg"])
        return fit
    raise ValueError(f"unknown order-value model {model!r}; use one of {', '.join(SPEND_MODELS)}")


def expected_order_value(model: str, params: clv.Params, summary: pd.DataFrame) -> np.ndarray:
    """Return each customer's expected order value under the named order-value model."""
    if model == "repeat":
        return clv.gammagamma_expected_spend(params, summary["x"], summary["repeat_avg"])
    if model == "first":
        gg = {k: params[k] for k in ("p", "q", "gamma")}
        value = clv.gammagamma_expected_spend(gg, summary["x"], summary["repeat_avg"])
        first = summary["first_amount"].to_numpy(float)
        one_time = (summary["x"].to_numpy() == 0) & (first > 0)
        value[one_time] = predict_from_first_order(params, first[one_time])
        return value
    # Negative net days (refunds) are not purchases, so monetary_avg is >= 0.
    return clv.gammagamma_expected_spend(
        params, summary["frequency"], np.maximum(summary["monetary_avg"].to_numpy(float), 0.0)
    )


def fit_first_order_regression(
    first_amount: npt.ArrayLike, repeat_avg: npt.ArrayLike
) -> dict[str, float]:
    """Return intercept, slope and smearing of log(repeat mean) on log(first order), repeat buyers."""
    first = np.asarray(first_amount, float)
    later = np.asarray(repeat_avg, float)
    keep = (first > 0) & (later > 0) & np.isfinite(first) & np.isfinite(later)
    if keep.sum() < clv.MIN_REPEAT_BUYERS:
        raise InsufficientDataError(
            f"first-order value: only {int(keep.sum())} repeat buyers with positive orders "
            f"(need {clv.MIN_REPEAT_BUYERS})"
        )
    u, v = np.log(first[keep]), np.log(later[keep])
    spread = float(np.var(u))
    slope = float(np.cov(u, v, bias=True)[0, 1] / spread) if spread > 0 else 0.0
    # A first order cannot foretell the opposite of itself; keep the weight in [0, 1].
    slope = min(max(slope, 0.0), 1.0)
    intercept = float(v.mean() - slope * u.mean())
    smearing = float(np.mean(np.exp(v - intercept - slope * u)))
    return {"first_intercept": intercept, "first_slope": slope, "first_smearing": smearing}


def predict_from_first_order(params: clv.Params, first_amount: npt.ArrayLike) -> np.ndarray:
    """Return the expected order value of one-time buyers from their first order."""
    u = np.log(np.asarray(first_amount, float))
    return np.asarray(
        np.exp(params["first_intercept"] + params["first_slope"] * u) * params["first_smearing"]
    )


def calibrate_by_decile(
    predicted: npt.ArrayLike, actual: npt.ArrayLike, bins: int = 10
) -> pd.DataFrame:
    """Return mean predicted and actual per decile of the prediction (ties by input order)."""
    pred = np.asarray(predicted, float)
    act = np.asarray(actual, float)
    order = np.argsort(pred, kind="stable")
    groups = np.array_split(order, bins)
    rows = [
        {
            "decile": i + 1,
            "customers": len(g),
            "predicted": float(pred[g].mean()),
            "actual": float(act[g].mean()),
        }
        for i, g in enumerate(groups)
        if len(g)
    ]
    return pd.DataFrame(rows, columns=["decile", "customers", "predicted", "actual"])


def calibration_error(table: pd.DataFrame) -> float:
    """Return the customer-weighted mean |predicted - actual| over deciles, relative to the mean actual."""
    n = table["customers"].to_numpy(float)
    gap = np.abs(table["predicted"].to_numpy(float) - table["actual"].to_numpy(float))
    mean_actual = float(np.dot(n, table["actual"].to_numpy(float)) / n.sum())
    return float(np.dot(n, gap) / n.sum() / mean_actual) if mean_actual > 0 else float("nan")


def compare_value_models(
    summary: pd.DataFrame,
    horizon: float,
    *,
    count_models: tuple[str, ...] = clv.COUNT_MODELS,
    spend_models: tuple[str, ...] = SPEND_MODELS,
) -> dict[str, Any]:
    """Fit every candidate on the calibration period and judge it on the holdout.

    ``summary`` is summarize_customers with a holdout (holdout_days, holdout_amount);
    ``horizon`` is the holdout length in model time units. Returns per-model decile
    tables and errors, and the chosen ``count_model`` and ``spend_model``. Each is judged
    on the whole base and on one-time buyers alike (the mean of both decile errors): the
    purchase models on holdout purchases, the order-value models on customers who bought
    in the holdout (predicted order value vs their mean holdout order). One-time buyers
    are half of many bases, and the very customers whose scores the models disagree on.
    Holdout spend (purchases x order value) is reported too.
    """
    x, t_x, T = (summary[c].to_numpy(float) for c in ("x", "t_x", "T"))
    actual_days = summary["holdout_days"].to_numpy(float)
    actual_spend = summary["holdout_amount"].to_numpy(float)
    one_time = x == 0
    result: dict[str, Any] = {"count_models": {}, "spend_models": {}, "notes": []}
    predictions: dict[str, np.ndarray] = {}
    for name in count_models:
        try:
            fit = clv.fit_count_model(name, x, t_x, T)
        except InsufficientDataError as exc:
            result["notes"].append(str(exc))
            continue
        pred = clv.expected_purchases(name, fit.params, horizon, x, t_x, T)
        alive = clv.probability_alive(name, fit.params, x, t_x, T)
        predictions[name] = pred
        table = calibrate_by_decile(pred, actual_days)
        result["count_models"][name] = {
            "params": fit.params,
            "log_likelihood": fit.log_likelihood,
            "predicted_total": float(pred.sum()),
            "actual_total": float(actual_days.sum()),
            "decile_error": calibration_error(table),
            "one_time_buyers_decile_error": calibration_error(
                calibrate_by_decile(pred[one_time], actual_days[one_time])
            )
            if one_time.sum() >= 10
            else None,
            "mean_p_alive_one_time_buyers": float(alive[one_time].mean())
            if one_time.any()
            else None,
            "deciles": table.to_dict(orient="records"),
        }
    if not predictions:
        return result
    for entry in result["count_models"].values():
        entry["choice_error"] = _mean_error(
            entry["decile_error"], entry["one_time_buyers_decile_error"]
        )
    count_choice = min(predictions, key=lambda k: result["count_models"][k]["choice_error"])
    result["count_model"] = count_choice
    bought = actual_days > 0
    holdout_order = np.divide(
        actual_spend, actual_days, out=np.zeros_like(actual_spend), where=bought
    )
    for name in spend_models:
        try:
            fit = fit_spend_model(name, summary)
        except InsufficientDataError as exc:
            result["notes"].append(str(exc))
            continue
        value = expected_order_value(name, fit.params, summary)
        order_table = calibrate_by_decile(value[bought], holdout_order[bought])
        spend_table = calibrate_by_decile(predictions[count_choice] * value, actual_spend)
        returning_one_time = bought & one_time
        result["spend_models"][name] = {
            "params": fit.params,
            "order_value_decile_error": calibration_error(order_table),
            "one_time_buyers_order_value_decile_error": calibration_error(
                calibrate_by_decile(value[returning_one_time], holdout_order[returning_one_time])
            )
            if returning_one_time.sum() >= 10
            else None,
            "holdout_spend_decile_error": calibration_error(spend_table),
            "order_value_deciles": order_table.to_dict(orient="records"),
            "holdout_spend_deciles": spend_table.to_dict(orient="records"),
        }
    for entry in result["spend_models"].values():
        entry["choice_error"] = _mean_error(
            entry["order_value_decile_error"], entry["one_time_buyers_order_value_decile_error"]
        )
    if result["spend_models"]:
        result["spend_model"] = min(
            result["spend_models"], key=lambda k: result["spend_models"][k]["choice_error"]
        )
    cleaned: dict[str, Any] = _finite_or_none(result)
    return cleaned


def _finite_or_none(value: Any) -> Any:
    """Return ``value`` with NaN and infinities replaced by None, so it stores as JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _mean_error(overall: float, one_time: float | None) -> float:
    """Return the mean of the whole base's and the one-time buyers' errors (either alone if one)."""
    values = [v for v in (overall, one_time) if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("inf")
