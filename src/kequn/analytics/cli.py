"""`kequn analyze FILE --out DIR`: every analysis on a transactions file, no database needed."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from . import churn, clv, cohorts, report, rfm, valuemodels
from .config import AnalyticsConfig, read_analytics_config
from .engine import days_per_unit, prepare_daily, summarize_customers, to_date
from .errors import AnalyticsInputError, InsufficientDataError
from .io import check_not_future, read_transactions
from .lifecycle import STAGE_LABELS
from .scores import score_customers
from .side import SideWork

STEPS = 8  # progress-bar steps (run_analysis's step calls)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``kequn analyze``."""
    p = argparse.ArgumentParser(
        prog="kequn analyze",
        description="Analyse a transactions file (CSV, Parquet or the CDNOW text files): RFM, "
        "lifecycle, CLV (BG/NBD, Pareto/NBD, Gamma-Gamma), churn risk and cohorts.",
    )
    p.add_argument("file", help="transactions file: CSV/Parquet with customer_id, date, amount")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--calibration-end", help="last day of the calibration period (YYYY-MM-DD)")
    p.add_argument("--holdout-end", help="last day of the holdout period (YYYY-MM-DD)")
    p.add_argument("--time-unit", choices=["day", "week"], default="week")
    p.add_argument(
        "--now", help="the run's 'now' (default: the current time); later dates are refused"
    )
    p.add_argument(
        "--config",
        help="analytics settings (TOML or JSON): segment grid, lifecycle thresholds, horizons",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``kequn analyze``; return 0 on success, 2 on bad input, 1 on an unexpected error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        now = _parse_now(args.now)
        result = run_analysis(
            args.file,
            args.out,
            calibration_end=args.calibration_end,
            holdout_end=args.holdout_end,
            time_unit=args.time_unit,
            now=now,
            progress=not args.quiet,
            config=read_analytics_config(args.config),
        )
    except (AnalyticsInputError, InsufficientDataError) as exc:
        print(f"kequn analyze: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kequn analyze: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line unless asked
        if args.debug:
            raise
        print(
            f"kequn analyze: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return 1
    print(
        f"wrote {result['out']}/report.html, customers.csv ({result['customers']} customers), "
        f"models.json in {result['seconds']:.1f}s",
        file=sys.stderr,
    )
    return 0


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now()  # noqa: DTZ005 -- naive wall-clock time, like the transactions analytics reads
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise AnalyticsInputError(f"--now: not a date/time: {value!r}") from None


def _end_of(day: date) -> datetime:
    start = datetime(day.year, day.month, day.day)  # noqa: DTZ001 -- naive wall-clock time, like the transactions analytics reads
    return start + timedelta(days=1) - timedelta(microseconds=1)


class StageClock:
    """Seconds spent in each named stage; starting a stage ends the one before it."""

    def __init__(self, first: str = ""):
        self.seconds: dict[str, float] = {}
        self.label = first
        self.since = time.perf_counter()

    def start(self, label: str) -> None:
        """End the current stage (if any) and start ``label`` ("" starts nothing)."""
        tick = time.perf_counter()
        if self.label:
            self.seconds[self.label] = round(tick - self.since, 3)
        self.label, self.since = label, tick


def run_analysis(
    source: str | Path | pa.Table,
    out_dir: str | Path,
    *,
    calibration_end: date | str | None = None,
    holdout_end: date | str | None = None,
    time_unit: str = "week",
    now: datetime | None = None,
    progress: bool = True,
    config: AnalyticsConfig | None = None,
) -> dict[str, Any]:
    """Run every analysis and write report.html, customers.csv and models.json into ``out_dir``.

    Periods: without ``calibration_end`` everything is scored at the last transaction day
    and there is no holdout evaluation. With it, the models are fitted on the calibration
    period and checked on the holdout (to ``holdout_end``, default the last transaction
    day); the churn model is trained at an earlier cut-off whose label window ends at
    ``calibration_end`` and is evaluated on the holdout. customers.csv holds the scores
    as of the end of the data used (``holdout_end`` or ``calibration_end``).
    """
    # Two side processes for work that waits on nothing else (Pareto/NBD; the churn
    # training, then the churn reasons): forked first, before Arrow and DuckDB start
    # their threads and while memory is small.
    with SideWork("kequn-paretonbd") as paretonbd, SideWork("kequn-scores") as side:
        return _run_analysis(
            source,
            out_dir,
            paretonbd,
            side,
            calibration_end=calibration_end,
            holdout_end=holdout_end,
            time_unit=time_unit,
            now=now,
            progress=progress,
            config=config,
        )


def _run_analysis(
    source: str | Path | pa.Table,
    out_dir: str | Path,
    paretonbd: SideWork,
    side: SideWork,
    *,
    calibration_end: date | str | None,
    holdout_end: date | str | None,
    time_unit: str,
    now: datetime | None,
    progress: bool,
    config: AnalyticsConfig | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    bar = tqdm(total=STEPS, desc="analyze", file=sys.stderr, disable=not progress, leave=False)

    # Seconds per stage, for models.json: each step closes the stage before it.
    clock = StageClock("read file")
    score_clock = StageClock()

    def step(label: str) -> None:
        clock.start(label)
        bar.set_postfix_str(label)
        bar.update(1)

    now = now or datetime.now()  # noqa: DTZ005 -- naive wall-clock time, like the transactions analytics reads
    tx = source if isinstance(source, pa.Table) else read_transactions(source)
    name = str(source) if not isinstance(source, pa.Table) else "transactions"
    if tx.num_rows == 0:
        raise AnalyticsInputError("no transactions in file", source=name)
    check_not_future(tx, now, source=name)
    first_day = pc.min(tx["ts"]).as_py().date()
    last_day = pc.max(tx["ts"]).as_py().date()
    cal_end = to_date(calibration_end) or last_day
    hold_end = to_date(holdout_end)
    if calibration_end is not None and hold_end is None and last_day > cal_end:
        hold_end = last_day
    if hold_end is not None and hold_end <= cal_end:
        raise AnalyticsInputError(
            f"--holdout-end {hold_end} must be after --calibration-end {cal_end}"
        )
    if cal_end < first_day:
        raise AnalyticsInputError(
            f"--calibration-end {cal_end} is before the first transaction ({first_day})"
        )
    score_day = hold_end or cal_end
    unit = days_per_unit(time_unit)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models: dict[str, Any] = {
        "source": name,
        "time_unit": time_unit,
        "first_day": first_day.isoformat(),
        "last_day": last_day.isoformat(),
        "calibration_end": cal_end.isoformat(),
        "holdout_end": hold_end.isoformat() if hold_end else None,
        "conventions": {
            "purchase": "rows netted per customer and day; a day is a purchase if net > 0 "
            "(or 0 with no refund rows); repeat purchases x = purchase days - 1",
            "T": "days from first purchase day to calibration_end (calibration_end inclusive "
            "for purchases), divided by days per time unit",
            "gamma_gamma_monetary": "mean spend of repeat purchase days (first purchase excluded)",
        },
        "notes": [],
    }
    sections: list[tuple[str, str]] = []

    step("calibration fits")
    # Netted per customer and day once: the calibration summary, the churn evaluation and
    # (when it scores every row) the customer scores all start from the same days.
    daily = prepare_daily(tx)
    cal = summarize_customers(daily, cal_end, hold_end, time_unit=time_unit)
    models["calibration"] = {
        "customers": len(cal),
        "repeat_buyers": int((cal["x"] > 0).sum()),
        "repeat_purchases": int(cal["x"].sum()),
    }
    fits: dict[str, clv.FittedModel] = {}
    # Without a holdout nothing downstream reads Pareto/NBD: it is fitted by the side
    # process while the scores and cohorts are computed, and collected before the files
    # are written. With a holdout the check below needs it at once.
    paretonbd.submit(
        clv.fit_paretonbd,
        cal["x"].to_numpy(float),
        cal["t_x"].to_numpy(float),
        cal["T"].to_numpy(float),
    )
    try:
        fits["bgnbd"] = clv.fit_bgnbd(cal["x"], cal["t_x"], cal["T"])
        models["bgnbd"] = fits["bgnbd"].to_dict()
    except InsufficientDataError as exc:
        models["notes"].append(str(exc))
    rep = cal[cal["x"] > 0]
    try:
        fits["gammagamma"] = clv.fit_gammagamma(rep["x"], rep["repeat_avg"])
        models["gammagamma"] = fits["gammagamma"].to_dict()
    except InsufficientDataError as exc:
        models["notes"].append(str(exc))

    def collect_paretonbd() -> None:
        try:
            fit, seconds = paretonbd.result()
        except InsufficientDataError as exc:
            models["notes"].append(str(exc))
            return
        fits["paretonbd"] = fit
        models["paretonbd"] = fit.to_dict()
        clock.seconds["Pareto/NBD fit (alongside, in a second process)"] = seconds

    if hold_end is not None:
        clock.start("calibration fits: waiting for Pareto/NBD")
        collect_paretonbd()
    fits_section = len(sections)
    sections.append(("Model fits 模型参数", ""))  # filled in once Pareto/NBD is in

    step("holdout check")
    if hold_end is not None and "bgnbd" in fits:
        horizon = (hold_end - cal_end).days / unit
        args = (cal["x"], cal["t_x"], cal["T"])
        pred_bg = clv.bgnbd_expected_purchases(fits["bgnbd"].params, horizon, *args)
        table = clv.summarize_holdout(cal, pred_bg).rename(columns={"predicted": "bgnbd"})
        if "paretonbd" in fits:
            pred_pn = clv.paretonbd_expected_purchases(fits["paretonbd"].params, horizon, *args)
            table["paretonbd"] = clv.summarize_holdout(cal, pred_pn)["predicted"].to_numpy()
        models["holdout"] = table.to_dict(orient="records")
        per = table[table["label"] != "total"]
        series = {"actual 实际": per["actual"].tolist(), "BG/NBD": per["bgnbd"].tolist()}
        if "paretonbd" in per:
            series["Pareto/NBD"] = per["paretonbd"].tolist()
        chart = report.render_bar_chart(
            "Holdout purchases per customer by calibration repeat purchases 预测期购买次数（按校准期重复购买次数）",
            per["label"].tolist(),
            series,
            width=900,
        )
        sections.append(
            (
                "Calibration / holdout 校准与验证",
                chart + report.render_table(table, float_format="{:,.2f}"),
            )
        )

    chosen: dict[str, Any] = {}
    if hold_end is not None:
        horizon = (hold_end - cal_end).days / unit
        value = valuemodels.compare_value_models(cal, horizon)
        models["value_models"] = value
        chosen = {k: value[k] for k in ("count_model", "spend_model") if k in value}
        if value["count_models"]:
            sections.append(("Value models on the holdout 价值模型验证", _value_models_html(value)))

    step("churn evaluation")
    if hold_end is not None:
        horizon_days = (hold_end - cal_end).days
        # Train on the first half of the calibration history, label on the second half.
        train_h = min(horizon_days, max(7, (cal_end - first_day).days // 2))
        try:
            with threadpool_limits(limits=1, user_api="openmp"):  # see scores._score_churn
                ev, _ = churn.evaluate_churn(
                    daily,
                    cal_end,
                    horizon_days,
                    train_cutoff=cal_end - timedelta(days=train_h),
                    train_horizon_days=train_h,
                    time_unit=time_unit,
                )
            models["churn_evaluation"] = ev.to_dict()
            sections.append(("Churn model evaluation 流失模型评估", _churn_html(ev)))
        except InsufficientDataError as exc:
            models["notes"].append(str(exc))

    step("customer scores")
    scored_tx = tx.filter(
        pc.less_equal(tx["ts"], pa.scalar(_end_of(score_day), pa.timestamp("us")))
    )
    options = (config or AnalyticsConfig()).score_options()
    if hold_end is not None:
        # Scored at the holdout's end, churn means no purchase for as long as the holdout.
        options["churn_horizon_days"] = (hold_end - cal_end).days
    same_rows = scored_tx.num_rows == tx.num_rows
    scoring_days = daily if same_rows else prepare_daily(scored_tx)
    # Without a holdout the calibration summary and BG/NBD fit are the scoring ones.
    reuse = same_rows and hold_end is None
    score_clock.start("summarising customers")
    summary = cal if reuse else summarize_customers(scoring_days, score_day, time_unit=time_unit)
    scores = score_customers(
        # Every customer is scored from the summary; as in the nightly refresh, the value
        # models are judged and churn is trained on the days of at most
        # churn.TRAINING_CUSTOMERS customers drawn at random.
        scoring_days.sample_customers(churn.TRAINING_CUSTOMERS),
        _end_of(score_day),
        time_unit=time_unit,
        progress=score_clock.start,
        **options,
        **chosen,
        summary=summary,
        bgnbd_fit=fits.get("bgnbd") if reuse else None,
        side=side,
    )
    score_clock.start("")  # closes the last scoring stage
    score_models = scores.attrs["models"]
    models["scores"] = score_models
    models["notes"].extend(score_models.get("notes", []))
    if hold_end is not None and "bgnbd" in fits:
        cal_cols = cal[["customer_id", "holdout_days"]].assign(
            calibration_expected_holdout_purchases=pred_bg
        )
        scores = scores.merge(cal_cols, on="customer_id", how="left")
    sections.append(("Segments and lifecycle 客户分群与生命周期", _segments_html(scores)))

    step("cohorts")
    co = cohorts.compute_cohorts(daily, score_day)  # its days up to score_day: scored_tx's
    models["cohorts"] = {
        "repeat_rate": co.repeat_rate.to_dict(orient="records"),
    }
    sections.append(("Cohorts 同期群", _cohorts_html(co)))

    step("waiting for Pareto/NBD")
    if hold_end is None:
        collect_paretonbd()
    in_order: dict[str, clv.FittedModel] = {
        k: fits[k] for k in ("bgnbd", "paretonbd", "gammagamma") if k in fits
    }
    sections[fits_section] = ("Model fits 模型参数", _fits_html(in_order))

    step("writing files")
    write_customers_csv(scores, out / "customers.csv")
    html = report.render_report(
        sections,
        title=f"Kequn customer analysis 客群分析 — {name}",
        notes=models["notes"],
    )
    (out / "report.html").write_text(html, encoding="utf-8")
    step("done")
    # Written last so that it can hold every stage's time (its own write is not counted).
    models["stage_seconds"] = clock.seconds
    models["customer_scores_stage_seconds"] = score_clock.seconds
    (out / "models.json").write_text(
        json.dumps(_jsonable(models), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    bar.close()
    return {"out": str(out), "customers": len(scores), "seconds": time.perf_counter() - started}


# Text a spreadsheet may run as a formula (OWASP's list, plus the full-width forms); the same
# rule as the back office's exports (kequn.security.formulas), which this layer cannot import.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
PLAIN_NUMBER = r"[+-]?[0-9][0-9 .,]*"


def escape_formulas(frame: pd.DataFrame) -> pa.Table:
    """Return the table as Arrow with text cells that could start a formula prefixed with a quote.

    Customer ids come from the input file: `=HYPERLINK(...)` must open in Excel as text.
    A plain number such as -12.5 or +8613800138000 stays readable.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    starts = pa.array(FORMULA_STARTS)
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if pa.types.is_boolean(column.type):
            # Written as pandas writes them, so the file reads the same as before.
            text = pc.if_else(column, "True", "False")
            table = table.set_column(i, name, text)
            continue
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        # The first character alone first: a regex over every long reason text cost seconds.
        first = pc.utf8_slice_codeunits(column, 0, 1)
        suspect = pc.fill_null(pc.is_in(first, value_set=starts), False)
        if not pc.any(suspect).as_py():
            continue
        risky = pc.and_(suspect, pc.invert(pc.match_substring_regex(column, f"^{PLAIN_NUMBER}$")))
        if pc.any(risky).as_py():
            quoted = pc.binary_join_element_wise("'", column, "")
            table = table.set_column(i, name, pc.if_else(risky, quoted, column))
    return table


def write_customers_csv(scores: pd.DataFrame, path: Path) -> None:
    """Write the scores as CSV with formula-like text escaped (Arrow's writer, not pandas')."""
    csv.write_csv(escape_formulas(scores), path, csv.WriteOptions(quoting_style="needed"))


def _fits_html(fits: dict[str, clv.FittedModel]) -> str:
    if not fits:
        return (
            "<p>Too little data to fit any model; RFM results only. 数据太少，仅提供 RFM 结果。</p>"
        )
    rows = []
    for f in fits.values():
        params = ", ".join(f"{k} = {v:.4g}" for k, v in f.params.items())
        rows.append(
            {
                "model": f.name,
                "parameters": params,
                "log-likelihood": f.log_likelihood,
                "customers": f.n_customers,
            }
        )
    return report.render_table(pd.DataFrame(rows), float_format="{:,.1f}")


COUNT_MODEL_NAMES = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "paretonbd": "Pareto/NBD"}
SPEND_MODEL_NAMES = {
    "repeat": "Gamma-Gamma (repeat orders)",
    "all": "Gamma-Gamma (all orders)",
    "first": "Gamma-Gamma + first order",
}


def _value_models_html(value: dict[str, Any]) -> str:
    counts = value["count_models"]
    spends = value["spend_models"]
    intro = (
        "<p>Each model is fitted on the calibration period and judged by decile on the holdout: "
        "customers ranked by the prediction, ten equal groups, mean predicted vs actual. Error = "
        "mean |gap| / mean actual, on the whole base and on one-time buyers; the smaller mean of "
        f"both wins. Chosen: {COUNT_MODEL_NAMES.get(value.get('count_model', ''), '—')} and "
        f"{SPEND_MODEL_NAMES.get(value.get('spend_model', ''), '—')}. "
        "按预测值分十组比较预测与实际（全体客户与一次性购买客户），误差较小者胜出。</p>"
    )
    count_table = pd.DataFrame(
        {
            "model": [COUNT_MODEL_NAMES[k] for k in counts],
            "decile error": [v["decile_error"] for v in counts.values()],
            "one-time buyers": [v["one_time_buyers_decile_error"] for v in counts.values()],
            "mean P(alive), one-time buyers": [
                v["mean_p_alive_one_time_buyers"] for v in counts.values()
            ],
            "predicted": [v["predicted_total"] for v in counts.values()],
            "actual": [v["actual_total"] for v in counts.values()],
        }
    )
    spend_table = pd.DataFrame(
        {
            "order value": [SPEND_MODEL_NAMES[k] for k in spends],
            "decile error": [v["order_value_decile_error"] for v in spends.values()],
            "one-time buyers": [
                v["one_time_buyers_order_value_decile_error"] for v in spends.values()
            ],
            "holdout spend error": [v["holdout_spend_decile_error"] for v in spends.values()],
        }
    )
    html = intro + report.render_table(count_table, float_format="{:,.3f}")
    if len(spend_table):
        html += report.render_table(spend_table, float_format="{:,.3f}")
    chosen = value.get("count_model")
    if isinstance(chosen, str) and chosen in counts:
        deciles = pd.DataFrame(counts[chosen]["deciles"])
        html += report.render_bar_chart(
            f"Holdout purchases by decile of prediction ({COUNT_MODEL_NAMES[chosen]}) 按预测十分位的验证期购买",
            [str(d) for d in deciles["decile"]],
            {
                "predicted 预测": deciles["predicted"].tolist(),
                "actual 实际": deciles["actual"].tolist(),
            },
            width=900,
        )
    return html


def _churn_html(ev: churn.ChurnEvaluation) -> str:
    metrics = pd.DataFrame(
        {
            "score": list(ev.auc),
            "ROC AUC": [ev.auc[k] for k in ev.auc],
            "top-decile lift": [ev.lift_top_decile.get(k, float("nan")) for k in ev.auc],
        }
    )
    intro = (
        f"<p>Trained on features at {ev.train_cutoff} with churn = no purchase by {ev.train_label_end}; "
        f"evaluated on features at {ev.test_cutoff} with churn = no purchase by {ev.test_label_end} "
        f"({ev.n_test} customers, churn rate {ev.churn_rate_test:.1%}). "
        f"训练截止 {ev.train_cutoff}，评估截止 {ev.test_cutoff}。</p>"
    )
    brier = pd.DataFrame({"probability": list(ev.brier), "Brier": list(ev.brier.values())})
    chart = report.render_bar_chart(
        "ROC AUC on held-out time 留出期 AUC",
        list(ev.auc),
        {"AUC": list(ev.auc.values())},
        y_format="{:.2f}",
    )
    rel = ev.reliability
    rel_chart = report.render_line_chart(
        "Reliability: predicted vs observed churn 校准曲线",
        rel["range"].tolist(),
        {"predicted 预测": rel["predicted"].tolist(), "observed 实际": rel["observed"].tolist()},
        y_format="{:.1f}",
        y_max=1.0,
    )
    return (
        intro
        + '<div class="grid">'
        + chart
        + rel_chart
        + "</div>"
        + report.render_table(metrics)
        + report.render_table(brier)
        + report.render_table(rel)
    )


def _segments_html(scores: pd.DataFrame) -> str:
    seg = scores["segment"].dropna().value_counts()
    seg_labels = [
        f"{rfm.SEGMENT_LABELS.get(s, (s, s))[0]} {rfm.SEGMENT_LABELS.get(s, (s, s))[1]}"
        for s in seg.index
    ]
    stage = scores["lifecycle_stage"].value_counts()
    stage_labels = [f"{STAGE_LABELS[s][0]} {STAGE_LABELS[s][1]}" for s in stage.index]
    summary = scores.groupby("segment", dropna=True).agg(
        customers=("customer_id", "size"),
        recency_days=("recency_days", "mean"),
        frequency=("frequency", "mean"),
        monetary=("monetary", "mean"),
        clv=("clv", "mean"),
        churn_risk=("churn_risk", "mean"),
    )
    return (
        '<div class="grid">'
        + report.render_hbar_chart("RFM segments RFM 分群", seg_labels, seg.tolist())
        + report.render_hbar_chart("Lifecycle stages 生命周期阶段", stage_labels, stage.tolist())
        + "</div>"
        + report.render_table(summary.reset_index(), float_format="{:,.2f}")
    )


def _cohorts_html(co: cohorts.CohortTables) -> str:
    ret = co.retention
    ages = [c for c in ret.columns if isinstance(c, int)]
    heat = report.render_heatmap(
        "Retention by first-purchase month 按首购月份的留存",
        ret["cohort"].tolist(),
        [str(a) for a in ages],
        ret[ages].to_numpy().tolist(),
    )
    aov = report.render_line_chart(
        "Average order value by month 月平均客单价",
        co.order_value["month"].tolist(),
        {"AOV 客单价": co.order_value["average_order_value"].tolist()},
    )
    return heat + aov + report.render_table(co.repeat_rate, float_format="{:,.3f}")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (date, datetime)):
        return obj.isoformat()
    return obj
