"""Agreement of each hospital with a reference (expert or AI) and across hospitals.

Per hospital we need Cohen's κ with a bootstrap interval, the malignancy
sensitivity and specificity with Wilson intervals, and per-diagnosis "sensitivity"
(called k when the reference says k) and "over-call" rates (called k when the
reference says something else), which are what a planted bias such as
under-calling melanoma or over-calling psoriasis changes.

κ's case bootstrap is done on the confusion table: resampling n cases with
replacement is exactly a multinomial draw of the cell counts with the observed
cell shares, so 1,000 resamples of a 30,000-case hospital cost microseconds
instead of 1,000 calls to scikit-learn. ``tests/qc`` checks the result against
:func:`skinml.stats.cohen_kappa`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from skinml.stats import krippendorff_alpha, wilson_ci
from skinml.vocabulary import malignant_codes

#: Columns of :func:`hospital_agreement`'s summary that only mean something when some
#: diagnosis is malignant (left out otherwise).
MALIGNANT_COLUMNS = [
    "reference_malignant",
    "malignant_sensitivity",
    "sensitivity_ci_low",
    "sensitivity_ci_high",
    "reference_benign",
    "malignant_specificity",
    "specificity_ci_low",
    "specificity_ci_high",
]


def kappa_from_table(table: np.ndarray) -> np.ndarray:
    """Cohen's κ of one (K×K) or many (B×K×K) confusion tables (NaN where undefined)."""
    t = np.asarray(table, dtype=float)
    n = t.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        po = np.trace(t, axis1=-2, axis2=-1) / n
        pe = (t.sum(axis=-1) * t.sum(axis=-2)).sum(axis=-1) / n**2
        kappa = (po - pe) / (1.0 - pe)
    return np.where(pe < 1.0, kappa, np.nan)


def kappa_with_ci(
    table: np.ndarray, *, n_bootstrap: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """κ of a confusion table with a percentile case-bootstrap interval (multinomial draws)."""
    t = np.asarray(table, dtype=float)
    n = int(t.sum())
    value = float(kappa_from_table(t))
    if n == 0 or not np.isfinite(value):
        return value, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, (t / n).ravel(), size=n_bootstrap).reshape((n_bootstrap, *t.shape))
    ks = kappa_from_table(draws)
    ks = ks[np.isfinite(ks)]
    if len(ks) < n_bootstrap / 2:
        return value, float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(ks, [a, 1.0 - a])
    return value, float(lo), float(hi)


def confusion_tables(
    frame: pd.DataFrame, rater: str, reference: str, labels: list[str]
) -> dict[str, np.ndarray]:
    """Per-hospital confusion tables (rows = reference, columns = rater), vectorised."""
    sub = frame[frame[rater].notna() & frame[reference].notna()]
    k = len(labels)
    ref = pd.Categorical(sub[reference].astype(str), categories=labels).codes.astype(np.int64)
    rat = pd.Categorical(sub[rater].astype(str), categories=labels).codes.astype(np.int64)
    hosp_codes, hosp_names = pd.factorize(sub["hospital"], sort=True)
    flat = (hosp_codes * k + ref) * k + rat
    counts = np.bincount(flat.astype(np.int64), minlength=len(hosp_names) * k * k)
    cube = counts.reshape(len(hosp_names), k, k)
    return {str(h): cube[i] for i, h in enumerate(hosp_names)}


def hospital_agreement(
    frame: pd.DataFrame,
    reference: str,
    *,
    rater: str = "diagnosis",
    malignant: Iterable[str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Agreement of each hospital's diagnoses with a reference column.

    Returns:
        summary: per hospital ``n, agreement (+ Wilson CI), kappa (+ bootstrap CI),
            malignant_sensitivity/specificity (+ Wilson CI)``, sorted by hospital name.
        per_diagnosis: per hospital and diagnosis the counts behind the per-diagnosis
            sensitivity (``called_k_when_ref_k / ref_k``) and over-call rate
            (``called_k_when_ref_not_k / ref_not_k``).
    """
    both = frame[frame[rater].notna() & frame[reference].notna()]
    labels = sorted(
        set(both[rater].astype(str).unique()) | set(both[reference].astype(str).unique())
    )
    tables = confusion_tables(both, rater, reference, labels)
    mal_labels = {lab.lower() for lab in (malignant_codes() if malignant is None else malignant)}
    is_mal = np.array([lab.lower() in mal_labels for lab in labels])
    rows, per_dx = [], []
    for h, t in tables.items():
        n = int(t.sum())
        agree = int(np.trace(t))
        lo, hi = wilson_ci(agree, n)
        kap, klo, khi = kappa_with_ci(t, n_bootstrap=n_bootstrap, seed=seed)
        ref_mal = int(t[is_mal].sum())
        tp = int(t[np.ix_(is_mal, is_mal)].sum())
        ref_ben = int(t[~is_mal].sum())
        tn = int(t[np.ix_(~is_mal, ~is_mal)].sum())
        s_lo, s_hi = wilson_ci(tp, ref_mal)
        sp_lo, sp_hi = wilson_ci(tn, ref_ben)
        rows.append(
            {
                "hospital": h,
                "reference": reference,
                "n": n,
                "agreement": agree / n if n else np.nan,
                "agreement_ci_low": lo,
                "agreement_ci_high": hi,
                "kappa": kap,
                "kappa_ci_low": klo,
                "kappa_ci_high": khi,
                "reference_malignant": ref_mal,
                "malignant_sensitivity": tp / ref_mal if ref_mal else np.nan,
                "sensitivity_ci_low": s_lo,
                "sensitivity_ci_high": s_hi,
                "reference_benign": ref_ben,
                "malignant_specificity": tn / ref_ben if ref_ben else np.nan,
                "specificity_ci_low": sp_lo,
                "specificity_ci_high": sp_hi,
            }
        )
        row_tot = t.sum(axis=1)
        col_tot = t.sum(axis=0)
        diag = np.diag(t)
        for j, lab in enumerate(labels):
            per_dx.append(
                {
                    "hospital": h,
                    "reference": reference,
                    "diagnosis": lab,
                    "ref_k": int(row_tot[j]),
                    "called_k_when_ref_k": int(diag[j]),
                    "ref_not_k": int(n - row_tot[j]),
                    "called_k_when_ref_not_k": int(col_tot[j] - diag[j]),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(per_dx)


def shared_case_alpha(
    frame: pd.DataFrame, *, case: str = "case", n_bootstrap: int = 200, seed: int = 0
) -> tuple[dict, pd.DataFrame]:
    """Krippendorff's α across hospitals on cases rated by two or more of them.

    Shared cases arise in ring trials or when images are re-read by several
    hospitals. Missing ratings (a hospital that did not read a case) are allowed.

    Returns:
        overall: α with a case-bootstrap 95% interval, counts of cases and hospitals
            (empty dict when fewer than 10 shared cases exist).
        per_hospital: each hospital's agreement with the majority of the *other*
            hospitals on the shared cases, with a Wilson interval.
    """
    from skinml.stats import bootstrap_ci

    sub = frame[frame[case].notna()]
    wide = sub.pivot_table(index=case, columns="hospital", values="diagnosis", aggfunc="first")
    wide = wide[wide.notna().sum(axis=1) >= 2]
    if len(wide) < 10 or wide.shape[1] < 2:
        return {}, pd.DataFrame()
    matrix = wide.to_numpy(dtype=object).T  # raters × cases

    def alpha(cols: np.ndarray) -> float:
        return krippendorff_alpha(matrix[:, cols])

    ci = bootstrap_ci(alpha, np.arange(matrix.shape[1]), n_bootstrap=n_bootstrap, seed=seed)
    overall = {
        "krippendorff_alpha": ci.value,
        "ci_low": ci.ci_low,
        "ci_high": ci.ci_high,
        "shared_cases": int(matrix.shape[1]),
        "hospitals": int(matrix.shape[0]),
        "n_bootstrap": n_bootstrap,
        "seed": seed,
    }
    rows = []
    for h in wide.columns:
        own = wide[h]
        others = wide.drop(columns=h)
        majority = others.mode(axis=1)[0]
        ok = own.notna() & majority.notna() & (others.notna().sum(axis=1) >= 1)
        n = int(ok.sum())
        k = int((own[ok] == majority[ok]).sum())
        lo, hi = wilson_ci(k, n)
        rows.append(
            {
                "hospital": h,
                "shared_cases": n,
                "agreement_with_others_majority": k / n if n else np.nan,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return overall, pd.DataFrame(rows)
