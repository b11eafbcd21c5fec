"""Diagnosis mix per hospital against the pooled mix, crude and adjusted for case mix.

A hospital that sees more melanoma is not necessarily over-calling it: it may
see older patients, more backs and scalps, or run a pigmented-lesion clinic.
The crude comparison (χ² with adjusted residuals) says *whether* the mix
differs; indirect standardisation says whether it differs *more than its case
mix predicts*: a pooled multinomial model on the covariates alone (no hospital
term) gives each case's expected diagnosis probabilities, and each hospital's
observed count is compared with the sum of its cases' expectations (O/E).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from skinml.errors import DataError


def contingency(frame: pd.DataFrame, row: str = "hospital", col: str = "diagnosis") -> pd.DataFrame:
    """Counts of ``row`` × ``col`` (sorted by name on both axes)."""
    table = pd.crosstab(frame[row], frame[col])
    return table.sort_index(axis=0).sort_index(axis=1)


def adjusted_residuals(counts: pd.DataFrame) -> pd.DataFrame:
    """Haberman's adjusted residuals of a contingency table (≈ N(0,1) under independence)."""
    obs = counts.to_numpy(dtype=float)
    n = obs.sum()
    r = obs.sum(axis=1, keepdims=True)
    c = obs.sum(axis=0, keepdims=True)
    exp = r @ c / n
    with np.errstate(divide="ignore", invalid="ignore"):
        res = (obs - exp) / np.sqrt(exp * (1 - r / n) * (1 - c / n))
    return pd.DataFrame(res, index=counts.index, columns=counts.columns)


def diagnosis_mix(counts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Crude diagnosis mix: cells, per-hospital tests against the rest, overall χ².

    Returns:
        cells: long table ``hospital, diagnosis, count, n, share, share_ci_low,
            share_ci_high, pooled_share, adjusted_residual``.
        tests: per hospital ``chi2, df, p_value, cramers_v`` of its mix against all other
            hospitals pooled (a 2 × K table).
        overall: χ² of the whole table with df, p-value and Cramér's V.
    """
    from statsmodels.stats.proportion import proportion_confint

    counts = counts.loc[counts.sum(axis=1) > 0, counts.sum(axis=0) > 0]
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        raise DataError(
            "diagnosis mix needs at least two hospitals and two diagnoses",
            expected="records from several hospitals with several diagnoses",
        )
    res = adjusted_residuals(counts)
    n_h = counts.sum(axis=1)
    pooled = counts.sum(axis=0) / counts.to_numpy().sum()
    cells = counts.stack().rename("count").reset_index()
    cells.columns = ["hospital", "diagnosis", "count"]
    cells["n"] = cells["hospital"].map(n_h).astype(int)
    cells["share"] = cells["count"] / cells["n"]
    lo, hi = proportion_confint(cells["count"], cells["n"], alpha=0.05, method="wilson")
    cells["share_ci_low"], cells["share_ci_high"] = np.asarray(lo), np.asarray(hi)
    cells["pooled_share"] = cells["diagnosis"].map(pooled)
    cells["adjusted_residual"] = res.stack().to_numpy()

    chi2, p, dof, _ = stats.chi2_contingency(counts.to_numpy())
    total = counts.to_numpy().sum()
    overall = {
        "chi2": float(chi2),
        "df": int(dof),
        "p_value": float(p),
        "cramers_v": float(np.sqrt(chi2 / (total * (min(counts.shape) - 1)))),
        "n": int(total),
        "hospitals": int(counts.shape[0]),
        "diagnoses": int(counts.shape[1]),
    }
    rows = []
    all_counts = counts.sum(axis=0).to_numpy()
    for h in counts.index:
        own = counts.loc[h].to_numpy()
        rest = all_counts - own
        keep = (own + rest) > 0
        tab = np.vstack([own[keep], rest[keep]])
        if rest.sum() == 0 or own.sum() == 0 or keep.sum() < 2:
            rows.append(
                {"hospital": h, "chi2": np.nan, "df": 0, "p_value": np.nan, "cramers_v": np.nan}
            )
            continue
        c2, pv, df, _ = stats.chi2_contingency(tab, correction=False)
        rows.append(
            {
                "hospital": h,
                "n": int(own.sum()),
                "chi2": float(c2),
                "df": int(df),
                "p_value": float(pv),
                "cramers_v": float(np.sqrt(c2 / tab.sum())),
            }
        )
    return cells, pd.DataFrame(rows), overall


def casemix_design(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Turn case-mix covariates into categorical bands (missing is its own level).

    Numeric covariates are banded so that the model needs no linearity
    assumption: columns whose name contains ``age`` in 10-year bands, others in
    quintiles. Text covariates are used as categories.
    """
    out = pd.DataFrame(index=frame.index)
    for c in covariates:
        raw = frame[c]
        probe = raw.dropna().head(1000)
        numeric = len(probe) and pd.to_numeric(probe, errors="coerce").notna().mean() >= 0.9
        num = pd.to_numeric(raw, errors="coerce") if numeric else None
        if numeric:
            if "age" in c.lower():
                band = (np.floor(num / 10) * 10).clip(lower=0, upper=90)
                names = {b: f"{b}-{b + 9}" if b < 90 else "90+" for b in range(0, 100, 10)}
                codes = pd.Series(band.fillna(-1).astype(int).to_numpy(), index=raw.index)
                labels = codes.map({**names, -1: "missing"})
            else:
                labels = (
                    pd.qcut(num, 5, duplicates="drop").astype(str).where(num.notna(), "missing")
                )
            out[c] = labels.astype(str)
        else:
            out[c] = raw.astype(str).where(raw.notna(), "missing")
    return out


def casemix_expected(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    outcome: str = "diagnosis",
    *,
    c: float = 1.0,
) -> pd.DataFrame:
    """Each case's expected diagnosis probabilities from its case mix alone (pooled model).

    A multinomial logistic regression (scikit-learn, mild L2 penalty ``c`` to keep
    rare strata finite) is fitted on the banded covariates *without* a hospital
    term. Because all covariates are categorical it is fitted on the distinct
    covariate patterns with counts as weights, which makes a million records cheap.

    Returns:
        A frame aligned with ``frame`` with one probability column per diagnosis.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    if not covariates:
        raise DataError("case-mix adjustment needs at least one covariate", fix="pass --covariates")
    design = casemix_design(frame, covariates)
    y_code, classes = pd.factorize(frame[outcome], sort=True)
    classes = np.asarray(classes, dtype=object).astype(str)
    pattern = design.groupby(list(covariates), sort=False).ngroup().to_numpy()
    if len(classes) < 2:
        raise DataError("case-mix adjustment needs at least two diagnoses")
    n_pat = int(pattern.max()) + 1
    weights = np.bincount(pattern * len(classes) + y_code, minlength=n_pat * len(classes))
    pat_idx, cls_idx = np.divmod(np.flatnonzero(weights), len(classes))
    first_row = np.zeros(n_pat, dtype=np.int64)
    first_row[pattern] = np.arange(len(pattern))  # any row of a pattern has its design
    enc = OneHotEncoder(handle_unknown="ignore")
    x_pat = enc.fit_transform(design.iloc[first_row][list(covariates)])
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(x_pat[pat_idx], classes[cls_idx], sample_weight=weights[weights > 0])
    probs = model.predict_proba(x_pat)[pattern]
    return pd.DataFrame(probs, index=frame.index, columns=list(model.classes_))


def adjusted_mix(frame: pd.DataFrame, expected: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observed vs case-mix-expected diagnosis counts per hospital (indirect standardisation).

    Returns:
        cells: ``hospital, diagnosis, observed, expected, o_e, o_e_ci_low, o_e_ci_high,
            standardized_residual`` where the residual is (O − E)/√Σp(1−p).
        tests: per hospital the Pearson statistic Σ(O − E)²/E over diagnoses with its
            approximate χ²(K − 1) p-value.
    """
    hosp = frame["hospital"].to_numpy()
    obs = pd.crosstab(frame["hospital"], frame["diagnosis"]).reindex(
        columns=expected.columns, fill_value=0
    )
    exp = expected.groupby(hosp).sum().reindex(index=obs.index)
    var = (expected * (1 - expected)).groupby(hosp).sum().reindex(index=obs.index)
    cells = pd.DataFrame(
        {
            "hospital": np.repeat(obs.index.to_numpy(), obs.shape[1]),
            "diagnosis": np.tile(obs.columns.to_numpy(), obs.shape[0]),
            "observed": obs.to_numpy().ravel(),
            "expected": exp.to_numpy().ravel(),
        }
    )
    o, e = cells["observed"].to_numpy(float), cells["expected"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cells["o_e"] = o / e
        cells["o_e_ci_low"] = np.where(o > 0, stats.chi2.ppf(0.025, 2 * o) / 2, 0.0) / e
        cells["o_e_ci_high"] = stats.chi2.ppf(0.975, 2 * (o + 1)) / 2 / e
        cells["standardized_residual"] = (o - e) / np.sqrt(var.to_numpy().ravel())
    k = obs.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pearson = ((obs - exp) ** 2 / exp).sum(axis=1)
    tests = pd.DataFrame(
        {
            "hospital": obs.index,
            "n": obs.sum(axis=1).to_numpy(),
            "pearson_chi2_adjusted": pearson.to_numpy(),
            "df_adjusted": k - 1,
            "p_value_adjusted": stats.chi2.sf(pearson.to_numpy(), k - 1),
        }
    )
    return cells, tests
