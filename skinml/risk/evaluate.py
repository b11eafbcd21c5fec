"""Metrics for risk models: discrimination with CIs, calibration, net benefit, categories.

Pure functions on ``(y, p)`` arrays. Decision-curve analysis follows Vickers &
Elkin (2006, Med Decis Making 26:565): net benefit at threshold probability
``pt`` is ``TP/n - FP/n * pt / (1 - pt)``, compared with treating everyone and
no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from skinml.stats import bootstrap_ci, wilson_ci


def auc_ci(
    y: np.ndarray, p: np.ndarray, *, n_bootstrap: int = 1000, seed: int = 0, groups: Any = None
) -> dict[str, Any]:
    """ROC AUC with a percentile bootstrap interval (resampling groups when given)."""
    return bootstrap_ci(
        roc_auc_score, y, p, n_bootstrap=n_bootstrap, seed=seed, groups=groups
    ).as_dict()


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-count bins (risk scores are skewed; equal-width bins would be empty)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    order = np.argsort(p)
    ece = 0.0
    for chunk in np.array_split(order, n_bins):
        if len(chunk):
            ece += len(chunk) / len(p) * abs(y[chunk].mean() - p[chunk].mean())
    return float(ece)


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed vs mean predicted risk per equal-count bin (for the reliability plot)."""
    order = np.argsort(p)
    rows = []
    for chunk in np.array_split(order, n_bins):
        if len(chunk):
            rows.append(
                {
                    "mean_predicted": float(p[chunk].mean()),
                    "observed": float(y[chunk].mean()),
                    "n": len(chunk),
                }
            )
    return pd.DataFrame(rows)


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: Sequence[float]) -> pd.DataFrame:
    """Decision curve: model, treat-all and treat-none net benefit per threshold."""
    y = np.asarray(y, int)
    n = len(y)
    prev = y.mean()
    rows = []
    for t in thresholds:
        pos = p >= t
        tp = float(np.sum(pos & (y == 1)))
        fp = float(np.sum(pos & (y == 0)))
        odds = t / (1.0 - t)
        rows.append(
            {
                "threshold": float(t),
                "net_benefit_model": tp / n - fp / n * odds,
                "net_benefit_treat_all": prev - (1.0 - prev) * odds,
                "net_benefit_treat_none": 0.0,
            }
        )
    return pd.DataFrame(rows)


def threshold_for_sensitivity(y: np.ndarray, p: np.ndarray, target: float) -> dict[str, float]:
    """Highest threshold whose sensitivity reaches ``target`` (chosen on validation/OOF data)."""
    y = np.asarray(y, int)
    cand = np.unique(p)[::-1]
    n_pos = max(int(y.sum()), 1)
    n_neg = max(int((1 - y).sum()), 1)
    for t in cand:
        sens = float(np.sum((p >= t) & (y == 1)) / n_pos)
        if sens >= target:
            spec = float(np.sum((p < t) & (y == 0)) / n_neg)
            return {"threshold": float(t), "sensitivity": sens, "specificity": spec}
    return {"threshold": float(cand[-1]), "sensitivity": 1.0, "specificity": 0.0}


def sens_spec_at(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity and specificity at a fixed threshold, with Wilson intervals and counts."""
    y = np.asarray(y, int)
    pos = p >= threshold
    tp, fn = int(np.sum(pos & (y == 1))), int(np.sum(~pos & (y == 1)))
    tn, fp = int(np.sum(~pos & (y == 0))), int(np.sum(pos & (y == 0)))
    s_lo, s_hi = wilson_ci(tp, tp + fn)
    c_lo, c_hi = wilson_ci(tn, tn + fp)
    return {
        "sensitivity": tp / max(tp + fn, 1),
        "sensitivity_ci_low": s_lo,
        "sensitivity_ci_high": s_hi,
        "specificity": tn / max(tn + fp, 1),
        "specificity_ci_low": c_lo,
        "specificity_ci_high": c_hi,
        "n_flagged": int(pos.sum()),
        "true_positives": tp,
        "n_cases": tp + fn,
        "true_negatives": tn,
        "n_controls": tn + fp,
    }


def categorise(p: np.ndarray, cutoffs: Sequence[float], names: Sequence[str]) -> np.ndarray:
    """Risk category per patient: ``names[k]`` for ``cutoffs[k-1] <= p < cutoffs[k]``."""
    if len(names) != len(cutoffs) + 1:
        raise ValueError(
            f"{len(names)} category names need {len(names) - 1} cut-offs, got {len(cutoffs)}"
        )
    return np.asarray(names, dtype=object)[np.searchsorted(np.asarray(cutoffs), p, side="right")]


def category_table(
    y: np.ndarray, p: np.ndarray, cutoffs: Sequence[float], names: Sequence[str]
) -> pd.DataFrame:
    """Per category: patients, cases, observed risk (Wilson CI) and mean predicted risk."""
    cats = categorise(p, cutoffs, names)
    rows = []
    bounds = [0.0, *cutoffs, 1.0]
    for k, name in enumerate(names):
        m = cats == name
        n, cases = int(m.sum()), int(np.asarray(y)[m].sum())
        lo, hi = wilson_ci(cases, n)
        rows.append(
            {
                "category": name,
                "range": f"[{bounds[k]:.3g}, {bounds[k + 1]:.3g})",
                "n": n,
                "cases": cases,
                "observed_risk": cases / n if n else float("nan"),
                "observed_ci_low": lo,
                "observed_ci_high": hi,
                "mean_predicted": float(p[m].mean()) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def summary_metrics(
    y: np.ndarray, p: np.ndarray, *, n_bootstrap: int, seed: int, groups: Any = None
) -> dict[str, Any]:
    """AUC (CI), average precision (CI), Brier (CI), ECE on one split."""
    y = np.asarray(y, int)
    out = {
        "auc": auc_ci(y, p, n_bootstrap=n_bootstrap, seed=seed, groups=groups),
        "average_precision": bootstrap_ci(
            average_precision_score, y, p, n_bootstrap=n_bootstrap, seed=seed, groups=groups
        ).as_dict(),
        "brier": bootstrap_ci(
            brier_score_loss, y, p, n_bootstrap=n_bootstrap, seed=seed, groups=groups
        ).as_dict(),
        "ece": expected_calibration_error(y, p),
        "n": len(y),
        "n_cases": int(y.sum()),
        "prevalence": float(y.mean()),
    }
    return out
