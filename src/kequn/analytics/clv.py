# Variable names follow the papers (x, t_x, T), so upper-case T is deliberate.
# ruff: noqa: N803, N806
"""Customer-base models fitted by maximum likelihood: BG/NBD, Pareto/NBD and Gamma-Gamma.

The likelihoods are written from the published formulas:

* BG/NBD — Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", eq. (6).
* Pareto/NBD — Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and
  Related Expressions", with the Gaussian hypergeometric A0 term, evaluated in log space.
* Gamma-Gamma — Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".

All fits run on *compressed* sufficient statistics: identical (x, t_x, T) rows are
grouped with a count, so the likelihood is evaluated once per distinct row and
weighted. Parameters are optimised on the log scale (they must be positive) with
L-BFGS-B from a few starting points; the best log-likelihood wins.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from .errors import InsufficientDataError

MIN_CUSTOMERS = 30
MIN_REPEAT_BUYERS = 10

Params = dict[str, float]
# f(log params) -> (negative log-likelihood, gradient), or just the value.
GradientObjective = Callable[[np.ndarray], tuple[float, np.ndarray]]
Objective = Callable[[np.ndarray], float]


@dataclass
class FittedModel:
    """Fitted parameters with their log-likelihood and fit diagnostics."""

    name: str
    params: dict[str, float]
    log_likelihood: float
    n_customers: int
    n_distinct_rows: int
    converged: bool
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def compress_statistics(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group identical (x, t_x, T) rows; return the distinct rows and their counts."""
    ux, utx, uT, counts, _ = _group_rows(x, t_x, T)
    return ux, utx, uT, counts


def _group_rows(*columns: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """Return the distinct rows (sorted), their counts and each input row's distinct-row index."""
    cols = [np.asarray(c, float) for c in columns]
    n = len(cols[0])
    if n == 0:
        return (*(c[:0] for c in cols), np.zeros(0), np.zeros(0, dtype=np.intp))
    # A lexsort and a diff are several times faster than np.unique(axis=0) on 1M rows.
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    start = np.ones(n, dtype=bool)
    for c in sorted_cols:
        start[1:] &= c[1:] == c[:-1]
    start = ~start
    start[0] = True
    group = np.cumsum(start) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group
    counts = np.bincount(group).astype(float)
    return (*(c[start] for c in sorted_cols), counts, inverse)


def _check_inputs(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, what: str) -> None:
    n = np.size(x)
    if n < MIN_CUSTOMERS:
        raise InsufficientDataError(
            f"{what}: {n} customers is too few to fit (need at least {MIN_CUSTOMERS})"
        )
    if np.sum(np.asarray(x) > 0) < MIN_REPEAT_BUYERS:
        raise InsufficientDataError(
            f"{what}: only {int(np.sum(np.asarray(x) > 0))} customers bought more than once (need {MIN_REPEAT_BUYERS})"
        )
    if np.any(np.asarray(t_x) > np.asarray(T) + 1e-9) or np.any(np.asarray(x) < 0):
        raise ValueError(f"{what}: statistics must satisfy x >= 0 and 0 <= t_x <= T")
    if float(np.max(T)) <= 0:
        raise InsufficientDataError(
            f"{what}: all purchases are on the calibration end day; no time to observe"
        )


def _single_thread_blas() -> AbstractContextManager[Any]:
    """Return a context that keeps BLAS on one thread."""
    # np.dot over 34k rows took 24 ms with two OpenBLAS threads on two busy cores and
    # 0.007 ms on one: the likelihood sums are far too small to share out.
    limits: AbstractContextManager[Any] = threadpool_limits(limits=1, user_api="blas")
    return limits


def _minimise(negll: Objective, starts: list[np.ndarray]) -> tuple[np.ndarray, float, bool]:
    """Minimise a value-only objective with L-BFGS-B: a few steps from every start, then the best on.

    No Nelder-Mead polish: on CDNOW it moved the log-likelihood by 1e-8 in 224 evaluations,
    and where the likelihood rises forever along a ridge (a homogeneous dropout rate sends
    Pareto/NBD's s and beta to infinity) it spent up to 2,000 slow evaluations walking it.
    Only the leading start is followed to the end: the others cost as much again on such
    a ridge, and on CDNOW all three reach the same optimum.
    """
    bounds = [(-12, 12)] * len(starts[0])
    best: Any = None
    with np.errstate(all="ignore"), _single_thread_blas():
        for x0 in starts:
            res = optimize.minimize(
                negll, x0, method="L-BFGS-B", bounds=bounds, options={"maxiter": SCOUT_STEPS}
            )
            if best is None or res.fun < best.fun:
                best = res
        # On to the end with a tighter tolerance: a numerical gradient stops L-BFGS-B a
        # little short on the flat ridges these likelihoods have.
        final = optimize.minimize(
            negll, best.x, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-12}
        )
        if final.fun <= best.fun:
            best = final
    return best.x, float(best.fun), bool(np.isfinite(best.fun))


SCOUT_STEPS = 15  # L-BFGS-B iterations from each start before the best is followed on


def _minimise_with_gradient(
    negll_grad: GradientObjective, starts: list[np.ndarray]
) -> tuple[np.ndarray, float, bool]:
    """Minimise a (value, gradient) objective with L-BFGS-B from several starts; keep the best.

    With exact gradients L-BFGS-B converges to the optimum itself, so no Nelder-Mead
    polish is needed (it would cost thousands of evaluations on a million customers).
    """
    best: Any = None
    options = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 2000}
    with np.errstate(all="ignore"), _single_thread_blas():
        for x0 in starts:
            res = optimize.minimize(
                negll_grad,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-12, 12)] * len(x0),
                options=options,
            )
            if best is None or res.fun < best.fun:
                best = res
    return best.x, float(best.fun), bool(np.isfinite(best.fun))


# ---------------------------------------------------------------------------- BG/NBD


def fit_bgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FittedModel:
    """Fit BG/NBD (r, alpha, a, b) by maximum likelihood on compressed statistics."""
    return _fit_dropout_model("bgnbd", "BG/NBD", _bgnbd_objective, x, t_x, T)


def _fit_dropout_model(
    name: str,
    label: str,
    make_objective: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], GradientObjective],
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FittedModel:
    """Fit a four-parameter (r, alpha, a, b) model from the same starting points."""
    _check_inputs(x, t_x, T, label)
    ux, utx, uT, w = compress_statistics(x, t_x, T)
    scale = float(np.mean(np.asarray(T, float))) or 1.0
    negll_grad = make_objective(ux, utx, uT, w)
    starts = [
        np.log([0.5, scale / 4, 0.8, 2.5]),
        np.log([1.0, scale, 1.0, 1.0]),
        np.log([0.2, scale / 10, 0.5, 5.0]),
    ]
    logp, nll, ok = _minimise_with_gradient(negll_grad, starts)
    r, alpha, a, b = (float(v) for v in np.exp(logp))
    return FittedModel(
        name,
        {"r": r, "alpha": alpha, "a": a, "b": b},
        -nll,
        int(w.sum()),
        len(w),
        ok and bool(np.isfinite(nll)),
    )


def _bgnbd_objective(
    ux: np.ndarray, utx: np.ndarray, uT: np.ndarray, w: np.ndarray
) -> GradientObjective:
    """Return f(log params) -> (negative log-likelihood, gradient) on weighted distinct rows.

    Terms that depend on x alone (gamma and beta functions) are computed once per
    distinct x, and log(alpha + t) once per distinct t, so each evaluation costs a few
    vector operations per row instead of several special functions.
    """
    xs, xi = np.unique(ux, return_inverse=True)
    Ts, Ti = np.unique(uT, return_inverse=True)
    txs, txi = np.unique(utx, return_inverse=True)
    repeat = xs > 0
    w_total = float(w.sum())
    wx = np.bincount(xi, weights=w, minlength=len(xs))

    def negll_grad(logp: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(logp)
        rx = r + xs
        b_ab = special.betaln(a, b)
        a_term = special.betaln(a, b + xs) - b_ab
        b_term = np.where(
            repeat, special.betaln(a + 1, np.maximum(b + xs - 1, 1e-300)) - b_ab, -np.inf
        )
        common = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha)
        log_t = np.log(alpha + Ts)
        log_tx = np.log(alpha + txs)
        rx_row = rx[xi]
        first = a_term[xi] - rx_row * log_t[Ti]
        second = b_term[xi] - rx_row * log_tx[txi]
        top = np.maximum(first, second)
        share_first = np.exp(first - top)
        share_second = np.exp(second - top)
        norm = share_first + share_second
        lse = top + np.log(norm)
        value = float(-(np.dot(wx, common) + np.dot(w, lse)))
        if not np.isfinite(value):
            return 1e300, np.zeros(4)
        wa = w * share_first / norm  # weight of the "still alive" branch per row
        wb = w * share_second / norm
        wa_x = np.bincount(xi, weights=wa, minlength=len(xs))
        wb_x = np.bincount(xi, weights=wb, minlength=len(xs))
        psi_abx = special.digamma(a + b + xs)
        psi_bx1 = np.where(repeat, special.digamma(np.where(repeat, b + xs - 1, 1.0)), 0.0)
        d_r = (
            np.dot(wx, special.digamma(rx) - special.digamma(r) + np.log(alpha))
            - np.dot(wa, log_t[Ti])
            - np.dot(wb, log_tx[txi])
        )
        d_alpha = (
            w_total * r / alpha
            - np.dot(wa, rx_row / (alpha + Ts)[Ti])
            - np.dot(wb, rx_row / (alpha + txs)[txi])
        )
        psi_ab = special.digamma(a + b)
        d_a = (
            np.dot(wa_x, special.digamma(a) - psi_abx)
            + np.dot(wb_x, special.digamma(a + 1) - psi_abx)
            - w_total * (special.digamma(a) - psi_ab)
        )
        d_b = (
            np.dot(wa_x, special.digamma(b + xs) - psi_abx)
            + np.dot(wb_x, psi_bx1 - psi_abx)
            - w_total * (special.digamma(b) - psi_ab)
        )
        grad = -np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return value, grad

    return negll_grad


def bgnbd_probability_alive(
    params: Params, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return P(alive | x, t_x, T) under BG/NBD (FHL 2005, eq. 13)."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    log_ratio = (
        np.log(a)
        - np.log(np.maximum(b + x - 1, 1e-300))
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(x > 0, np.asarray(special.expit(-log_ratio)), 1.0)


def bgnbd_expected_purchases(
    params: Params, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return E[purchases in the next t units | x, t_x, T] under BG/NBD (FHL 2005, eq. 10)."""
    x = np.asarray(x, float)
    T = np.asarray(T, float)
    t_x = np.asarray(t_x, float)
    if np.ndim(t):
        t = np.broadcast_to(np.asarray(t, float), x.shape)
        factor = _bgnbd_purchase_factor(params, t, x, T)
    else:
        factor = _per_distinct_pair(x, T, lambda x, T: _bgnbd_purchase_factor(params, t, x, T))
    return np.asarray(factor * bgnbd_probability_alive(params, x, t_x, T))


def _bgnbd_purchase_factor(params: Params, t: Any, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return E[purchases in the next t | x, T] / P(alive): the part that needs 2F1."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1)
    return np.asarray(
        first * (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp)
    )


def _per_distinct_pair(
    x: np.ndarray, T: np.ndarray, f: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Return f(x, T) per row, evaluated once per distinct (x, T) pair.

    A million customers share far fewer (repeat count, age) pairs, and the Gauss
    hypergeometric function dominates the cost of predictions and CLV.
    """
    if len(x) < 10_000:
        return f(x, T)
    # Complex numbers sort by real part, then imaginary: distinct (x, T) pairs.
    pairs, inverse = np.unique(x + 1j * T, return_inverse=True)
    return f(pairs.real, pairs.imag)[inverse.ravel()]


def bgnbd_probability_no_purchase(
    params: Params, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return P(no purchase in the next t units | x, t_x, T) under BG/NBD.

    Dead customers never buy; a live one's rate has posterior Gamma(r+x, alpha+T), so
    P = 1 - P(alive) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x).
    """
    r, alpha = params["r"], params["alpha"]
    x = np.asarray(x, float)
    T = np.asarray(T, float)
    alive = bgnbd_probability_alive(params, x, t_x, T)
    silent = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + np.asarray(t, float))))
    return np.asarray(1 - alive + alive * silent)


def bgnbd_expected_purchases_new(params: Params, t: npt.ArrayLike) -> np.ndarray:
    """Return E[X(t)] for a randomly chosen new customer under BG/NBD (FHL 2005, eq. 9)."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    t = np.asarray(t, float)
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return np.asarray((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


# ------------------------------------------------------------------------ MBG/NBD


def fit_mbgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FittedModel:
    """Fit MBG/NBD (r, alpha, a, b) by maximum likelihood on compressed statistics.

    Batislam, Denizel & Filiztekin (2007): as BG/NBD, but a customer may also drop out
    right after the first purchase, so one-time buyers get a P(alive) below 1.
    """
    return _fit_dropout_model("mbgnbd", "MBG/NBD", _mbgnbd_objective, x, t_x, T)


def _mbgnbd_objective(
    ux: np.ndarray, utx: np.ndarray, uT: np.ndarray, w: np.ndarray
) -> GradientObjective:
    """Return f(log params) -> (negative log-likelihood, gradient) for MBG/NBD.

    Per row: log L = common(x) + log(exp(alive) + exp(gone)) with
    alive = ln B(a, b+x+1) - ln B(a, b) - (r+x) ln(alpha+T) and
    gone = ln B(a+1, b+x) - ln B(a, b) - (r+x) ln(alpha+t_x) (for every x, also 0).
    """
    xs, xi = np.unique(ux, return_inverse=True)
    Ts, Ti = np.unique(uT, return_inverse=True)
    txs, txi = np.unique(utx, return_inverse=True)
    w_total = float(w.sum())
    wx = np.bincount(xi, weights=w, minlength=len(xs))

    def negll_grad(logp: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(logp)
        rx = r + xs
        b_ab = special.betaln(a, b)
        a_term = special.betaln(a, b + xs + 1) - b_ab
        b_term = special.betaln(a + 1, b + xs) - b_ab
        common = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha)
        log_t = np.log(alpha + Ts)
        log_tx = np.log(alpha + txs)
        rx_row = rx[xi]
        first = a_term[xi] - rx_row * log_t[Ti]
        second = b_term[xi] - rx_row * log_tx[txi]
        top = np.maximum(first, second)
        share_first = np.exp(first - top)
        share_second = np.exp(second - top)
        norm = share_first + share_second
        lse = top + np.log(norm)
        value = float(-(np.dot(wx, common) + np.dot(w, lse)))
        if not np.isfinite(value):
            return 1e300, np.zeros(4)
        wa = w * share_first / norm
        wb = w * share_second / norm
        wa_x = np.bincount(xi, weights=wa, minlength=len(xs))
        wb_x = np.bincount(xi, weights=wb, minlength=len(xs))
        psi_abx1 = special.digamma(a + b + xs + 1)
        d_r = (
            np.dot(wx, special.digamma(rx) - special.digamma(r) + np.log(alpha))
            - np.dot(wa, log_t[Ti])
            - np.dot(wb, log_tx[txi])
        )
        d_alpha = (
            w_total * r / alpha
            - np.dot(wa, rx_row / (alpha + Ts)[Ti])
            - np.dot(wb, rx_row / (alpha + txs)[txi])
        )
        psi_ab = special.digamma(a + b)
        d_a = (
            np.dot(wa_x, special.digamma(a) - psi_abx1)
            + np.dot(wb_x, special.digamma(a + 1) - psi_abx1)
            - w_total * (special.digamma(a) - psi_ab)
        )
        d_b = (
            np.dot(wa_x, special.digamma(b + xs + 1) - psi_abx1)
            + np.dot(wb_x, special.digamma(b + xs) - psi_abx1)
            - w_total * (special.digamma(b) - psi_ab)
        )
        grad = -np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return value, grad

    return negll_grad


def mbgnbd_probability_alive(
    params: Params, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return P(alive | x, t_x, T) under MBG/NBD: 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    log_ratio = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.asarray(special.expit(-log_ratio))


def _mbgnbd_purchase_factor(params: Params, t: Any, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return E[purchases in the next t | x, T] / P(alive) under MBG/NBD."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x + 1, a + b + x, z)
    first = (a + b + x) / (a - 1)
    return np.asarray(
        first * (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp)
    )


def mbgnbd_expected_purchases(
    params: Params, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return E[purchases in the next t units | x, t_x, T] under MBG/NBD."""
    return _expected_purchases(
        _mbgnbd_purchase_factor, mbgnbd_probability_alive, params, t, x, t_x, T
    )


def _expected_purchases(
    factor_of: Callable[..., np.ndarray],
    alive_of: Callable[..., np.ndarray],
    params: Params,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> np.ndarray:
    x = np.asarray(x, float)
    T = np.asarray(T, float)
    t_x = np.asarray(t_x, float)
    if np.ndim(t):
        t = np.broadcast_to(np.asarray(t, float), x.shape)
        factor = factor_of(params, t, x, T)
    else:
        factor = _per_distinct_pair(x, T, lambda x, T: factor_of(params, t, x, T))
    return np.asarray(factor * alive_of(params, x, t_x, T))


# ------------------------------------------------------------------------ Pareto/NBD


def _log_hyp2f1(a: Any, b: Any, c: Any, z: npt.ArrayLike) -> np.ndarray:
    """Return log 2F1(a, b; c; z) for 0 <= z < 1, via the Euler transform when z is near 1."""
    z = np.asarray(z, float)
    direct = special.hyp2f1(a, b, c, z)
    out = np.log(np.where(direct > 0, direct, np.nan))
    bad = ~np.isfinite(out)
    if np.any(bad):
        # Euler: 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z); tames the c-a-b < 0 blow-up.
        a_, b_, c_, z_ = (np.broadcast_to(v, z.shape)[bad] for v in (a, b, c, z))
        alt = special.hyp2f1(c_ - a_, c_ - b_, c_, z_)
        out[bad] = (c_ - a_ - b_) * np.log1p(-z_) + np.log(alt)
    return out


def paretonbd_log_likelihood_terms(
    params: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return each customer's Pareto/NBD log-likelihood (Fader & Hardie 2005 note, eq. 22 with A0)."""
    r, alpha, s, beta = np.asarray(params, float)
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    # The hypergeometric terms depend on (x, t) only: evaluated once per distinct pair of
    # (x, t_x) and (x, T). A million customers share a few tens of thousands of pairs, and
    # 2F1 near z = 1 (a large beta against a small alpha) costs microseconds a call.
    pairs, inverse = np.unique(np.concatenate([x + 1j * t_x, x + 1j * T]), return_inverse=True)
    log_u = _paretonbd_log_u((r, alpha, s, beta), pairs.real, pairs.imag)[inverse.ravel()]
    log_u1, log_u2 = log_u[: len(x)], log_u[len(x) :]
    return _paretonbd_combine((r, alpha, s, beta), x, T, log_u1, log_u2)


def _paretonbd_log_u(params: Any, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Return log[2F1(r+s+x, b; r+s+x+1; |alpha-beta|/(max+t)) / (max+t)^(r+s+x)] per (x, t)."""
    r, alpha, s, beta = params
    rsx = r + s + x
    if alpha >= beta:
        big, small, b_arg = alpha, beta, s + 1
    else:
        big, small, b_arg = beta, alpha, r + x
    diff = big - small
    return np.asarray(_log_hyp2f1(rsx, b_arg, rsx + 1, diff / (big + t)) - rsx * np.log(big + t))


def _paretonbd_combine(
    params: Any, x: np.ndarray, T: np.ndarray, log_u1: np.ndarray, log_u2: np.ndarray
) -> np.ndarray:
    """Return the per-row log-likelihood from the hypergeometric terms at t_x (u1) and T (u2)."""
    r, alpha, s, beta = params
    rsx = r + s + x
    # A0 = u1 - u2 >= 0 (t_x <= T); log of a difference, kept exact when t_x == T.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = log_u1 + np.log(-np.expm1(np.minimum(log_u2 - log_u1, 0.0)))
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    term1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    term2 = np.log(s) - np.log(rsx) + log_a0
    return np.asarray(common + np.logaddexp(term1, term2))


def fit_paretonbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FittedModel:
    """Fit Pareto/NBD (r, alpha, s, beta) by maximum likelihood on compressed statistics."""
    _check_inputs(x, t_x, T, "Pareto/NBD")
    ux, utx, uT, w = compress_statistics(x, t_x, T)
    scale = float(np.mean(np.asarray(T, float))) or 1.0
    # Distinct (x, t) pairs behind the rows' t_x and T, found once for every evaluation.
    pairs, inverse = np.unique(np.concatenate([ux + 1j * utx, ux + 1j * uT]), return_inverse=True)
    px, pt = pairs.real, pairs.imag
    i1, i2 = inverse.ravel()[: len(ux)], inverse.ravel()[len(ux) :]

    # Terms of x alone or T alone are evaluated once per distinct value (130 and 730 on
    # 500,000 generated customers, against 154,000 distinct rows), the rest per row.
    xs, xi = np.unique(ux, return_inverse=True)
    Ts, Ti = np.unique(uT, return_inverse=True)
    wx = np.bincount(xi, weights=w, minlength=len(xs))
    w_total = float(w.sum())

    def negll(logp: np.ndarray) -> float:
        r, alpha, s, beta = p = np.exp(logp)
        with np.errstate(all="ignore"):
            log_u = _paretonbd_log_u(p, px, pt)
            log_u1, log_u2 = log_u[i1], log_u[i2]
            # A0 = u1 - u2 >= 0 (t_x <= T); log of a difference, kept exact when t_x == T.
            log_a0 = log_u1 + np.log(-np.expm1(np.minimum(log_u2 - log_u1, 0.0)))
            common = np.dot(wx, special.gammaln(r + xs)) + w_total * (
                r * np.log(alpha) + s * np.log(beta) - special.gammaln(r)
            )
            term1 = -(r + xs)[xi] * np.log(alpha + Ts)[Ti] - s * np.log(beta + Ts)[Ti]
            term2 = (np.log(s) - np.log(r + s + xs))[xi] + log_a0
            val = -float(common + np.dot(w, np.logaddexp(term1, term2)))
        return val if np.isfinite(val) else 1e300

    starts = [
        np.log([0.5, scale / 4, 0.5, scale / 4]),
        np.log([1.0, scale, 1.0, scale]),
        np.log([0.3, scale / 8, 1.5, scale]),
    ]
    logp, nll, ok = _minimise(negll, starts)
    r, alpha, s, beta = (float(v) for v in np.exp(logp))
    return FittedModel(
        "paretonbd",
        {"r": r, "alpha": alpha, "s": s, "beta": beta},
        -nll,
        int(w.sum()),
        len(w),
        ok and bool(np.isfinite(nll)),
    )


def paretonbd_probability_alive(
    params: Params, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return P(alive | x, t_x, T) under Pareto/NBD: 1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0)."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    x = np.asarray(x, float)
    t_x = np.asarray(t_x, float)
    T = np.asarray(T, float)
    ll = paretonbd_log_likelihood_terms((r, alpha, s, beta), x, t_x, T)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    term1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    # P(alive) = (alive branch) / (total likelihood).
    return np.asarray(np.exp(common + term1 - ll))


def paretonbd_expected_purchases(
    params: Params, t: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return E[purchases in the next t units | x, t_x, T] under Pareto/NBD."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    x = np.asarray(x, float)
    T = np.asarray(T, float)
    p_alive = paretonbd_probability_alive(params, x, t_x, T)
    if abs(s - 1) < 1e-8:
        horizon = np.log((beta + T + t) / (beta + T)) * (beta + T)
    else:
        horizon = (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    return np.asarray((r + x) / (alpha + T) * horizon * p_alive)


def _paretonbd_purchase_factor(params: Params, t: Any, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return E[purchases in the next t | x, T] / P(alive) under Pareto/NBD."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    if abs(s - 1) < 1e-8:
        horizon = np.log((beta + T + t) / (beta + T)) * (beta + T)
    else:
        horizon = (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    return np.asarray((r + x) / (alpha + T) * horizon)


# ----------------------------------------------------------------------- Gamma-Gamma


def fit_gammagamma(x: npt.ArrayLike, m: npt.ArrayLike) -> FittedModel:
    """Fit Gamma-Gamma (p, q, gamma) on repeat buyers' transaction counts x and mean spends m."""
    xs = np.asarray(x, float)
    ms = np.asarray(m, float)
    keep = (xs > 0) & (ms > 0) & np.isfinite(ms)
    xs, ms = xs[keep], ms[keep]
    if len(xs) < MIN_REPEAT_BUYERS:
        raise InsufficientDataError(
            f"Gamma-Gamma: only {len(xs)} repeat buyers with positive spend (need {MIN_REPEAT_BUYERS})"
        )
    ux, um, w, _ = _group_rows(xs, np.round(ms, 6))
    mean_m = float(np.mean(ms))
    negll_grad = _gammagamma_objective(ux, um, w)
    starts = [
        np.log([1.0, 1.0, mean_m]),
        np.log([5.0, 3.0, mean_m]),
        np.log([0.5, 2.0, mean_m / 2]),
    ]
    logp, nll, ok = _minimise_with_gradient(negll_grad, starts)
    p, q, gamma = (float(v) for v in np.exp(logp))
    extra = {"mean_spend": float(p * gamma / (q - 1)) if q > 1 else float("inf")}
    return FittedModel(
        "gammagamma", {"p": p, "q": q, "gamma": gamma}, -nll, int(w.sum()), len(w), ok, extra
    )


def _gammagamma_objective(ux: np.ndarray, um: np.ndarray, w: np.ndarray) -> GradientObjective:
    """Return f(log params) -> (negative log-likelihood, gradient) on weighted distinct rows."""
    xs, xi = np.unique(ux, return_inverse=True)
    wx = np.bincount(xi, weights=w, minlength=len(xs))
    w_total = float(w.sum())
    wux = w * ux
    log_m = np.log(um)
    # Parameter-free sums of (p*x - 1) * log m + p*x * log x.
    sum_log_m = float(np.dot(w, log_m))
    sum_x_log_mx = float(np.dot(wux, log_m + np.log(ux)))

    def negll_grad(logp: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = np.exp(logp)
        px = p * xs
        log_denominator = np.log(gamma + um * ux)
        inverse_denominator = 1 / (gamma + um * ux)
        value = -float(
            np.dot(wx, special.gammaln(px + q) - special.gammaln(px))
            - w_total * special.gammaln(q)
            + w_total * q * np.log(gamma)
            + p * sum_x_log_mx
            - sum_log_m
            - p * np.dot(wux, log_denominator)
            - q * np.dot(w, log_denominator)
        )
        if not np.isfinite(value):
            return 1e300, np.zeros(3)
        psi_pxq = special.digamma(px + q)
        d_p = (
            np.dot(wx * xs, psi_pxq - special.digamma(px))
            + sum_x_log_mx
            - np.dot(wux, log_denominator)
        )
        d_q = (
            np.dot(wx, psi_pxq)
            - w_total * special.digamma(q)
            + w_total * np.log(gamma)
            - np.dot(w, log_denominator)
        )
        d_gamma = w_total * q / gamma - np.dot(p * wux + q * w, inverse_denominator)
        return value, -np.array([d_p * p, d_q * q, d_gamma * gamma])

    return negll_grad


def gammagamma_expected_spend(params: Params, x: npt.ArrayLike, m: npt.ArrayLike) -> np.ndarray:
    """Return E[M | x, mean spend m]: a weighted mean of the population mean and the customer's mean."""
    p, q, gamma = params["p"], params["q"], params["gamma"]
    xs = np.asarray(x, float)
    ms: np.ndarray = np.nan_to_num(np.asarray(m, float))
    # For q <= 1 the population mean is infinite; fall back to the customer's own mean.
    if q <= 1:
        return np.where(xs > 0, ms, np.nan)
    return np.asarray((gamma + ms * xs) * p / (p * xs + q - 1))


# ------------------------------------------------------------------------------ CLV


def compute_clv(
    bgnbd_params: Params,
    expected_spend: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    periods: int = 12,
    days_per_period: float = 365.25 / 12,
    discount_rate: float = 0.01,
    days_per_unit: float = 7.0,
    model: str = "bgnbd",
) -> np.ndarray:
    """Return discounted CLV over ``periods`` periods: Σ E[M]·ΔE[purchases in period i]/(1+d)^i.

    ``model`` names the purchase model the parameters belong to (see COUNT_MODELS).
    """
    factor_of, alive_of = _COUNT_FUNCTIONS[model]
    x = np.asarray(x, float)
    T = np.asarray(T, float)

    def discounted_purchases(x: np.ndarray, T: np.ndarray) -> np.ndarray:
        # Per live customer: the sum over periods of new purchases, discounted.
        total = np.zeros_like(x)
        previous = np.zeros_like(x)
        for i in range(1, periods + 1):
            t = i * days_per_period / days_per_unit
            cumulative = factor_of(bgnbd_params, t, x, T)
            total += (cumulative - previous) / (1 + discount_rate) ** i
            previous = cumulative
        return total

    alive = alive_of(bgnbd_params, x, t_x, T)
    return np.asarray(
        _per_distinct_pair(x, T, discounted_purchases) * alive * np.asarray(expected_spend, float)
    )


COUNT_MODELS = ("bgnbd", "mbgnbd", "paretonbd")
_COUNT_FUNCTIONS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "bgnbd": (_bgnbd_purchase_factor, bgnbd_probability_alive),
    "mbgnbd": (_mbgnbd_purchase_factor, mbgnbd_probability_alive),
    "paretonbd": (_paretonbd_purchase_factor, paretonbd_probability_alive),
}
_COUNT_FITTERS: dict[str, Callable[..., FittedModel]] = {
    "bgnbd": fit_bgnbd,
    "mbgnbd": fit_mbgnbd,
    "paretonbd": fit_paretonbd,
}


def fit_count_model(
    model: str, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FittedModel:
    """Fit the named purchase-count model (one of COUNT_MODELS)."""
    return _COUNT_FITTERS[model](x, t_x, T)


def probability_alive(
    model: str, params: Params, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Return P(alive | x, t_x, T) under the named purchase-count model."""
    return np.asarray(_COUNT_FUNCTIONS[model][1](params, x, t_x, T))


def expected_purchases(
    model: str,
    params: Params,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> np.ndarray:
    """Return E[purchases in the next t units | x, t_x, T] under the named model."""
    factor_of, alive_of = _COUNT_FUNCTIONS[model]
    return _expected_purchases(factor_of, alive_of, params, t, x, t_x, T)


def probability_no_purchase(
    model: str,
    params: Params,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> np.ndarray:
    """Return P(no purchase in the next t units | x, t_x, T) under BG/NBD or MBG/NBD.

    A live customer's rate has posterior Gamma(r+x, alpha+T) in both, and the dropout only
    happens at purchases, so P = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x).
    """
    if model not in ("bgnbd", "mbgnbd"):
        raise ValueError(f"P(no purchase) is not available for {model}")
    r, alpha = params["r"], params["alpha"]
    x = np.asarray(x, float)
    T = np.asarray(T, float)
    alive = probability_alive(model, params, x, t_x, T)
    silent = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + np.asarray(t, float))))
    return np.asarray(1 - alive + alive * silent)


def summarize_holdout(
    summary: pd.DataFrame,
    predicted: np.ndarray,
    *,
    max_bucket: int = 7,
    actual_column: str = "holdout_days",
) -> pd.DataFrame:
    """Return predicted vs actual holdout purchases by calibration repeat count 0..max_bucket+ and in total."""
    df = pd.DataFrame(
        {
            "x": summary["x"].to_numpy(),
            "pred": predicted,
            "actual": summary[actual_column].to_numpy(),
        }
    )
    df["bucket"] = df["x"].clip(upper=max_bucket)
    g = (
        df.groupby("bucket")
        .agg(customers=("x", "size"), actual=("actual", "mean"), predicted=("pred", "mean"))
        .reset_index()
    )
    g["label"] = [f"{b}+" if b == max_bucket else str(b) for b in g["bucket"]]
    total = pd.DataFrame(
        [
            {
                "bucket": -1,
                "customers": len(df),
                "actual": df["actual"].sum(),
                "predicted": df["pred"].sum(),
                "label": "total",
            }
        ]
    )
    return pd.concat([g, total], ignore_index=True)[["label", "customers", "actual", "predicted"]]
