"""Metrics broken down by site, sex, age band, localization and device.

Dermatology models fail in subgroups (another hospital's camera, older skin,
acral sites) while the overall number looks fine. Each level gets its n and
its metrics with CIs: proportions (accuracy, malignant sensitivity and
specificity) as counts with Wilson intervals, which stay valid for a handful
of cases; balanced accuracy with a bootstrap CI, left out (point estimate
only) for levels with too few cases. Such levels stay in the table, marked,
so that a missing row is never mistaken for a good one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from skinml.errors import DataError
from skinml.evaluation._checks import check_classes, check_labels, check_probs
from skinml.evaluation.metrics import accuracy, balanced_accuracy
from skinml.evaluation.report import (
    malignant_predictions,
    proportion_with_clusters,
    resolve_threshold,
    safe_bootstrap,
)
from skinml.evaluation.thresholds import MalignancyThreshold, sensitivity_specificity

AGE_BANDS = ("<30", "30-44", "45-59", "60-74", "75+", "unknown")
DEFAULT_COLUMNS = ("site", "sex", "age_band", "localization", "device")
UNKNOWN = "unknown"


def age_band(ages: Sequence | pd.Series | np.ndarray) -> pd.Series:
    """Age in years -> ordered band ``<30, 30-44, 45-59, 60-74, 75+`` or ``unknown``.

    Missing, non-numeric or negative ages become ``unknown`` (a level of its
    own, because missing age is itself informative in registries).

    Returns:
        An ordered categorical Series (index kept when ``ages`` is a Series).
    """
    index = ages.index if isinstance(ages, pd.Series) else None
    a = pd.to_numeric(pd.Series(np.asarray(ages, dtype=object), index=index), errors="coerce")
    a = a.where(a >= 0)
    bands = pd.cut(a, bins=[0, 30, 45, 60, 75, np.inf], right=False, labels=list(AGE_BANDS[:-1]))
    bands = bands.cat.add_categories([UNKNOWN]).fillna(UNKNOWN)
    return bands.cat.set_categories(list(AGE_BANDS), ordered=True)


def _levels(values: pd.Series) -> list:
    """Levels in a readable order: category order if ordered, else by decreasing count."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.ordered:
        return [c for c in values.cat.categories if (values == c).any()]
    counts = values.value_counts(sort=True)
    return list(counts.index)


def _column_values(metadata: pd.DataFrame, column: str) -> pd.Series | None:
    """The column as levels (missing -> ``unknown``), or None if the data lacks it."""
    if column in metadata.columns:
        values = metadata[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            if values.isna().any() and UNKNOWN not in values.cat.categories:
                values = values.cat.add_categories([UNKNOWN])
            return values.fillna(UNKNOWN)
        return values.astype(object).where(values.notna(), UNKNOWN).astype(str)
    if column == "age_band" and "age" in metadata.columns:
        return age_band(metadata["age"])
    return None


def subgroup_table(
    y_true: np.ndarray | Sequence,
    probs: np.ndarray,
    classes: Sequence[str],
    malignant: Sequence[str],
    metadata: pd.DataFrame,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    *,
    min_n: int = 30,
    threshold: float | MalignancyThreshold | None = None,
    groups: np.ndarray | Sequence | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (column, level), plus an ``all`` row, with n and metrics with 95% CIs.

    Args:
        y_true, probs, classes, malignant, threshold: as for
            :func:`skinml.evaluation.evaluate` (the threshold is applied, never fitted).
        metadata: one row per case, aligned with ``probs`` (the manifest rows of
            the split). ``age_band`` is derived from ``age`` when absent.
            Columns the data does not have are skipped and listed in
            ``table.attrs["missing_columns"]``.
        columns: metadata columns to break down by.
        min_n: levels with fewer cases get no bootstrap (balanced accuracy without
            CI), ``small=True`` and a note saying so; their proportions keep Wilson CIs.
        groups: patient ids for a cluster bootstrap.

    Returns:
        Columns ``column, level, n, n_malignant, accuracy, accuracy_ci_low,
        accuracy_ci_high, accuracy_successes, balanced_accuracy(+_ci_low/_ci_high),
        malignant_sensitivity(+CI, +_successes), malignant_specificity(+CI, +_successes),
        small, note``. A proportion's denominator is ``n``, ``n_malignant`` or
        ``n - n_malignant``.
    """
    p = check_probs(probs)
    n, n_classes = p.shape
    mal_idx = check_classes(classes, n_classes, malignant)
    y = check_labels(y_true, n_classes, classes=classes, n=n)
    if not isinstance(metadata, pd.DataFrame) or len(metadata) != n:
        raise DataError(
            f"metadata has {len(metadata)} rows for {n} predictions",
            column="metadata",
            fix="pass the manifest rows of the evaluated split, in prediction order",
        )
    meta = metadata.reset_index(drop=True)
    g = None if groups is None else np.asarray(groups)
    t, _ = resolve_threshold(threshold)
    pred = p.argmax(axis=1)
    _, flag = malignant_predictions(p, mal_idx, t)
    y_mal = np.isin(y, mal_idx).astype(int)

    todo: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(n, dtype=bool))]
    missing = []
    for column in columns:
        values = _column_values(meta, column)
        if values is None:
            missing.append(column)
            continue
        for level in _levels(values):
            todo.append((column, str(level), (values == level).to_numpy()))

    rows = []
    for column, level, mask in tqdm(todo, desc="subgroups", leave=False, disable=None):
        rows.append(
            _row(
                column,
                level,
                y[mask],
                pred[mask],
                y_mal[mask],
                flag[mask],
                None if g is None else g[mask],
                min_n,
                n_bootstrap,
                seed,
            )
        )
    table = pd.DataFrame(rows)
    table.attrs["missing_columns"] = missing
    table.attrs["min_n"] = min_n
    table.attrs["n_bootstrap"] = n_bootstrap
    table.attrs["seed"] = seed
    return table


def _row(
    column: str,
    level: str,
    y: np.ndarray,
    pred: np.ndarray,
    y_mal: np.ndarray,
    flag: np.ndarray,
    g: np.ndarray | None,
    min_n: int,
    n_bootstrap: int,
    seed: int,
) -> dict:
    n = len(y)
    small = n < min_n
    boot = 0 if small else n_bootstrap
    pos, neg = y_mal == 1, y_mal == 0
    proportions = {
        "accuracy": (int((y == pred).sum()), n, accuracy, (y, pred)),
        "malignant_sensitivity": (
            int((flag[pos] == 1).sum()),
            int(pos.sum()),
            lambda a, b: sensitivity_specificity(a, b)[0],
            (y_mal, flag),
        ),
        "malignant_specificity": (
            int((flag[neg] == 0).sum()),
            int(neg.sum()),
            lambda a, b: sensitivity_specificity(a, b)[1],
            (y_mal, flag),
        ),
    }
    row: dict = {"column": column, "level": level, "n": n, "n_malignant": int(y_mal.sum())}
    if g is not None:
        row["n_patients"] = len(np.unique(g))
    ci = safe_bootstrap(balanced_accuracy, y, pred, n_bootstrap=boot, seed=seed, groups=g)
    row["balanced_accuracy"] = ci.value
    row["balanced_accuracy_ci_low"], row["balanced_accuracy_ci_high"] = ci.ci_low, ci.ci_high
    for name, (k, total, fn, arrays) in proportions.items():
        p = proportion_with_clusters(k, total, fn, *arrays, n_bootstrap=boot, seed=seed, groups=g)
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = p.value, p.ci_low, p.ci_high
        row[f"{name}_successes"] = k
    notes = []
    if small:
        notes.append(
            f"too few cases for a bootstrap (n={n} < {min_n}): balanced accuracy without CI; "
            "proportions with Wilson CIs"
        )
    if row["n_malignant"] == 0:
        notes.append("no malignant cases: sensitivity not defined")
    if row["n_malignant"] == n:
        notes.append("no benign cases: specificity not defined")
    row["small"] = small
    row["note"] = "; ".join(notes)
    return row
