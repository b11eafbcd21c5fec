"""Agreement statistics: Cohen's κ (with bootstrap CI), Fleiss' κ and Krippendorff's α.

Thin wrappers over scikit-learn, statsmodels and the ``krippendorff`` package
that accept diagnosis labels as strings and handle missing ratings explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skinml.stats.bootstrap import BootstrapCI, bootstrap_ci


def cohen_kappa(
    rater_a: Sequence,
    rater_b: Sequence,
    *,
    labels: Sequence | None = None,
    weights: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> BootstrapCI:
    """Cohen's κ between two raters on the same cases, with a bootstrap 95% CI.

    Cases where either rating is missing (None/NaN/"") are excluded; callers
    that must count unanswered cases should map them to an explicit label first.
    """
    from sklearn.metrics import cohen_kappa_score

    a = np.asarray(rater_a, dtype=object)
    b = np.asarray(rater_b, dtype=object)
    keep = np.array([_present(x) and _present(y) for x, y in zip(a, b, strict=True)], dtype=bool)
    a, b = a[keep].astype(str), b[keep].astype(str)
    lab = None if labels is None else [str(x) for x in labels]

    def kappa(x: np.ndarray, y: np.ndarray) -> float:
        if len(set(x) | set(y)) < 2:
            # Perfect agreement on one class: κ is undefined (0/0).
            raise ValueError("kappa undefined for a single category")
        return float(cohen_kappa_score(x, y, labels=lab, weights=weights))

    return bootstrap_ci(kappa, a, b, n_bootstrap=n_bootstrap, seed=seed)


def fleiss_kappa(ratings: np.ndarray | Sequence[Sequence]) -> float:
    """Fleiss' κ for cases × raters (every rater rates every case).

    Args:
        ratings: array of shape (n_cases, n_raters) with category labels.
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    arr = np.asarray(ratings, dtype=object).astype(str)
    _, codes = np.unique(arr, return_inverse=True)
    table, _ = aggregate_raters(codes.reshape(arr.shape))
    return float(sm_fleiss(table, method="fleiss"))


def krippendorff_alpha(
    ratings: np.ndarray | Sequence[Sequence], *, level: str = "nominal"
) -> float:
    """Krippendorff's α for raters × cases; missing ratings (None/NaN/"") are allowed.

    Args:
        ratings: shape (n_raters, n_cases) of labels, with gaps as None/NaN.
        level: ``nominal`` for diagnoses, ``ordinal``/``interval`` for scores.
    """
    import krippendorff

    arr = np.asarray(ratings, dtype=object)
    present = np.vectorize(_present, otypes=[bool])(arr)
    labels = sorted({str(x) for x in arr[present]})
    if level == "nominal":
        index = {lab: i for i, lab in enumerate(labels)}
        numeric = np.full(arr.shape, np.nan)
        numeric[present] = [index[str(x)] for x in arr[present]]
    else:
        numeric = np.full(arr.shape, np.nan)
        numeric[present] = arr[present].astype(float)
    if len(labels) < 2:
        raise ValueError("Krippendorff's alpha needs at least two distinct ratings")
    return float(krippendorff.alpha(reliability_data=numeric, level_of_measurement=level))


def _present(x: object) -> bool:
    if x is None:
        return False
    if isinstance(x, float) and np.isnan(x):
        return False
    return not (isinstance(x, str) and x.strip() == "")
