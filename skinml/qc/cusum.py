"""Change over time: (risk-adjusted) Bernoulli CUSUM on monthly indicators.

A funnel plot compares hospitals over a whole period; a CUSUM asks whether a
hospital *changed* (a new device, a new registrar, a referral-policy change).
The weights are Steiner et al.'s (2000) log-likelihood ratio for an odds ratio
``R`` against each case's expected probability p₀ (the pooled rate, or a
case-mix model's prediction), W = y·log R − log(1 − p₀ + R·p₀), summed per month.
The threshold h is set by simulation so that an in-control hospital signals
with a chosen probability (default 5%) over its own observed months — an honest
false-alarm rate for the period actually monitored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def cusum_path(weights: np.ndarray) -> np.ndarray:
    """Upper CUSUM S_t = max(0, S_{t−1} + W_t), S_0 = 0, vectorised over the last axis.

    Uses the identity S_t = X_t − min(0, min_{s≤t} X_s) with X the cumulative sum,
    so many simulated paths are computed at once.
    """
    x = np.cumsum(weights, axis=-1)
    running_min = np.minimum.accumulate(np.minimum(x, 0.0), axis=-1)
    return x - running_min


def cusum_threshold(
    n_per_period: np.ndarray,
    p_per_period: np.ndarray,
    log_r: float,
    c_per_period: np.ndarray,
    *,
    false_alarm: float = 0.05,
    n_sim: int = 2000,
    seed: int = 0,
) -> float:
    """Threshold h with P(max S > h | in control) = ``false_alarm`` over these periods.

    In-control monthly event counts are simulated as Binomial(n, p̄) with p̄ the
    month's mean expected probability.
    """
    rng = np.random.default_rng(seed)
    n = np.asarray(n_per_period, dtype=np.int64)
    p = np.clip(np.asarray(p_per_period, dtype=float), 0.0, 1.0)
    y = rng.binomial(n, p, size=(n_sim, len(n)))
    paths = cusum_path(y * log_r - np.asarray(c_per_period, dtype=float))
    return float(np.quantile(paths.max(axis=1), 1.0 - false_alarm))


def monthly_cusum(
    frame: pd.DataFrame,
    outcome: pd.Series,
    expected: pd.Series | None = None,
    *,
    indicator: str,
    odds_ratios: Sequence[float] = (2.0, 0.5),
    false_alarm: float = 0.05,
    n_sim: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly (risk-adjusted) Bernoulli CUSUM per hospital for each odds ratio.

    Args:
        frame: records with ``hospital`` and a parsed ``date`` (rows without a date are ignored;
            the caller lists them as excluded from the time analysis).
        outcome: boolean per row (e.g. called malignant, disagreed with the AI).
        expected: each row's in-control probability; the pooled rate when None.
        odds_ratios: shifts to detect (R > 1 a rise, R < 1 a fall).

    Returns:
        summary: per hospital and direction ``months, n, events, h, max_cusum, signal,
            first_signal_month``.
        paths: per hospital, direction and month ``n, events, expected_events, cusum, h``.
    """
    dated = frame["date"].notna() & outcome.notna()
    y = outcome[dated].astype(float).to_numpy()
    p0 = (
        np.full(len(y), y.mean() if len(y) else np.nan)
        if expected is None
        else expected[dated].astype(float).to_numpy()
    )
    base = pd.DataFrame(
        {
            "hospital": frame.loc[dated, "hospital"].to_numpy(),
            "month": (
                frame.loc[dated, "date"].dt.year * 12 + frame.loc[dated, "date"].dt.month - 1
            ).to_numpy(),
            "y": y,
            "p0": p0,
        }
    )
    summaries, paths = [], []
    for r in odds_ratios:
        log_r = float(np.log(r))
        base["c"] = np.log1p((r - 1.0) * base["p0"])
        monthly = (
            base.groupby(["hospital", "month"], sort=True)
            .agg(
                n=("y", "size"), events=("y", "sum"), expected_events=("p0", "sum"), c=("c", "sum")
            )
            .reset_index()
        )
        direction = "rise" if r > 1 else "fall"
        for i, (h, m) in enumerate(monthly.groupby("hospital", sort=True)):
            m = m.sort_values("month")
            w = m["events"].to_numpy() * log_r - m["c"].to_numpy()
            s = cusum_path(w)
            n = m["n"].to_numpy()
            h_val = cusum_threshold(
                n,
                m["expected_events"].to_numpy() / n,
                log_r,
                m["c"].to_numpy(),
                false_alarm=false_alarm,
                n_sim=n_sim,
                seed=seed + i,
            )
            crossed = np.flatnonzero(s > h_val)
            summaries.append(
                {
                    "hospital": h,
                    "indicator": indicator,
                    "direction": direction,
                    "odds_ratio": r,
                    "months": len(m),
                    "n": int(n.sum()),
                    "events": int(m["events"].sum()),
                    "expected_events": float(m["expected_events"].sum()),
                    "h": h_val,
                    "max_cusum": float(s.max()) if len(s) else 0.0,
                    "signal": bool(len(crossed)),
                    "first_signal_month": _month_label(m["month"].iloc[crossed[0]])
                    if len(crossed)
                    else "",
                }
            )
            paths.append(
                pd.DataFrame(
                    {
                        "hospital": h,
                        "indicator": indicator,
                        "direction": direction,
                        "month": [_month_label(x) for x in m["month"]],
                        "n": n,
                        "events": m["events"].to_numpy(),
                        "expected_events": m["expected_events"].to_numpy(),
                        "cusum": s,
                        "h": h_val,
                    }
                )
            )
    summary = pd.DataFrame(summaries)
    path = pd.concat(paths, ignore_index=True) if paths else pd.DataFrame()
    return summary, path


def _month_label(index: int) -> str:
    """year*12 + month-1 -> 'YYYY-MM'."""
    year, month0 = divmod(int(index), 12)
    return f"{year:04d}-{month0 + 1:02d}"
