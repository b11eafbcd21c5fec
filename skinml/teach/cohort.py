"""A trainee among peers: agreement within the cohort, percentiles, progress over sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinml.teach.answers import NO_ANSWER

#: Fewer trainees than this and a percentile says more about who else came that day.
MIN_TRAINEES_FOR_PERCENTILE = 5


def percentile_of(values: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Percentile rank of each value in ``population`` (ties count half), vectorised.

    Matches ``scipy.stats.percentileofscore(population, v, kind="mean")``.
    """
    pop = np.sort(np.asarray(population, dtype=float))
    pop = pop[np.isfinite(pop)]
    if len(pop) == 0:
        return np.full(np.shape(values), np.nan)
    v = np.asarray(values, dtype=float)
    below = np.searchsorted(pop, v, side="left")
    at_or_below = np.searchsorted(pop, v, side="right")
    return (below + at_or_below) / 2.0 / len(pop) * 100.0


@dataclass(frozen=True)
class CohortAgreement:
    """Agreement among raters who read the same cases.

    Attributes:
        n_raters: raters included.
        n_cases: cases.
        krippendorff_alpha: nominal α over all answers; unanswered = missing.
        fleiss_kappa: Fleiss' κ on the cases every rater answered (NaN if < 2 such cases).
        n_complete_cases: cases used for Fleiss' κ.
        mean_pairwise_agreement: mean share of rater pairs that agree, per case.
    """

    n_raters: int
    n_cases: int
    krippendorff_alpha: float
    fleiss_kappa: float
    n_complete_cases: int
    mean_pairwise_agreement: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n_raters": self.n_raters,
            "n_cases": self.n_cases,
            "krippendorff_alpha": self.krippendorff_alpha,
            "fleiss_kappa": self.fleiss_kappa,
            "n_complete_cases": self.n_complete_cases,
            "mean_pairwise_agreement": self.mean_pairwise_agreement,
        }


def cohort_agreement(codes: np.ndarray, *, missing: int = NO_ANSWER) -> CohortAgreement:
    """Fleiss' κ and Krippendorff's α among raters (rows) over cases (columns).

    Uses ``skinml.stats.fleiss_kappa`` and ``skinml.stats.krippendorff_alpha``.
    Krippendorff's α keeps every answer (gaps are allowed); Fleiss' κ needs a
    rating from every rater, so it is computed on the complete cases only.

    Args:
        codes: (n_raters, n_cases) integer category codes; ``missing`` = no rating.
        missing: the code that means "no rating".
    """
    from skinml.stats import fleiss_kappa, krippendorff_alpha

    codes = np.asarray(codes)
    R, C = codes.shape
    nan = float("nan")
    if R < 2 or C == 0:
        return CohortAgreement(R, C, nan, nan, 0, nan)
    present = codes != missing
    obj = codes.astype(object)
    obj[~present] = None
    try:
        alpha = krippendorff_alpha(obj, level="nominal")
    except ValueError:
        alpha = nan
    complete = present.all(axis=0)
    fk = nan
    if complete.sum() >= 2:
        try:
            fk = fleiss_kappa(codes[:, complete].T)
        except (ValueError, ZeroDivisionError):
            fk = nan
    # Share of agreeing rater pairs per case, from category counts (no R^2 loop).
    n_cat = int(codes.max()) + 1 if present.any() else 1
    counts = np.zeros((C, n_cat))
    for k in range(n_cat):
        counts[:, k] = (codes == k).sum(axis=0)
    m = present.sum(axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pair = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
    mpa = float(np.nanmean(pair)) if np.isfinite(pair).any() else nan
    return CohortAgreement(R, C, float(alpha), float(fk), int(complete.sum()), mpa)


def latest_sessions(sheets: pd.DataFrame) -> np.ndarray:
    """Index of each trainee's latest sheet (sessions sorted as dates when they parse)."""
    order = session_order(sheets["session"])
    frame = sheets.assign(_order=order, _row=np.arange(len(sheets)))
    last = frame.sort_values(["trainee", "_order", "_row"]).groupby("trainee", sort=False).tail(1)
    return np.sort(last["_row"].to_numpy())


def session_order(sessions: pd.Series) -> np.ndarray:
    """Sort key for session labels: dates when every given label parses as a date, else text.

    A blank label (a trainee whose sheets have no session column) sorts first and
    does not switch everyone else to text order, where "9 Jan 2025" would come
    after "12 Mar 2025".
    """
    labels = sessions.fillna("").astype(str).str.strip()
    given = labels.ne("")
    dates = pd.to_datetime(labels.where(given), errors="coerce", format="mixed")
    if given.any() and dates[given].notna().all():
        return dates.rank(method="dense").fillna(0).to_numpy()
    return labels.rank(method="dense").to_numpy()


def progress_table(summary: pd.DataFrame, trainee: str) -> pd.DataFrame:
    """One trainee's sessions in order with the headline scores and their change."""
    rows = summary[summary["trainee"] == trainee].copy()
    rows["_order"] = session_order(rows["session"])
    rows = rows.sort_values("_order")
    cols = [
        "session",
        "accuracy",
        "balanced_accuracy",
        "malignant_sensitivity",
        "kappa",
        "n_missed_malignant",
    ]
    out = rows[cols].reset_index(drop=True)
    out["accuracy_change"] = out["accuracy"].diff()
    return out
