"""Fit a risk model: (tune) -> calibrate, with nested cross-validation for honest estimates.

The fitted object is ``CalibratedClassifierCV(best, method, cv=k,
ensemble=False)``: one base model refitted on all training data and one
calibrator (Platt ``sigmoid`` or ``isotonic``) fitted on its out-of-fold
predictions, which is what the ONNX export reproduces. Tuning, when the
model config has a ``param_grid``, is a ``GridSearchCV`` on the training
split; the outer cross-validation repeats tuning *and* calibration inside
each fold (nested), and its out-of-fold probabilities are the validation data
on which operating thresholds and categories are chosen (never the test split).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold

from skinml.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """The calibrated model and what the training split said about it."""

    model: CalibratedClassifierCV
    best_params: dict[str, Any]
    oof_proba: np.ndarray | None
    fit_seconds: float
    cv_auc_per_fold: list[float] = field(default_factory=list)


def _splitter(n_splits: int, seed: int, groups: Any) -> Any:
    if groups is not None:
        return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def check_enough_per_class(y: np.ndarray, outer_folds: int, inner_folds: int) -> None:
    """Refuse a cohort too small for the cross-validation asked of it, saying the numbers.

    scikit-learn's own refusal ("The least populated classes in y have only 1
    member") names neither the outcome counts nor the settings to change.

    Raises:
        DataError: a class has fewer members than the folds need.
    """
    import math

    counts = {int(k): int(v) for k, v in zip(*np.unique(y, return_counts=True), strict=True)}
    outer = outer_folds if outer_folds and outer_folds >= 2 else 1
    # The inner splits see only the outer training part, (outer - 1) / outer of a class.
    need = max(
        outer if outer >= 2 else 0,
        math.ceil(inner_folds * outer / (outer - 1)) if outer >= 2 else inner_folds,
        2,
    )
    smallest = min(counts.values()) if len(counts) == 2 else 0
    if smallest < need:
        raise DataError(
            f"the cohort has {counts.get(1, 0)} cases and {counts.get(0, 0)} controls; "
            f"{outer_folds} outer and {inner_folds} inner/calibration folds need at least "
            f"{need} of each",
            expected="both outcomes, each at least as often as the folds need",
            fix="add subjects, or lower cv.outer_folds / cv.inner_folds / calibration.folds",
        )


def _fit_once(
    estimator: Any,
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    *,
    param_grid: Mapping[str, list[Any]] | None,
    inner_folds: int,
    calibration: str,
    calibration_folds: int,
    seed: int,
    groups: Any = None,
) -> tuple[CalibratedClassifierCV, dict[str, Any]]:
    best_params: dict[str, Any] = {}
    est = clone(estimator)
    if param_grid:
        gs = GridSearchCV(
            est,
            dict(param_grid),
            scoring="roc_auc",
            cv=_splitter(inner_folds, seed, groups),
            n_jobs=1,
            refit=False,
        )
        gs.fit(X, y, groups=groups)
        best_params = dict(gs.best_params_)
        est = clone(estimator).set_params(**best_params)
    cv = list(_splitter(calibration_folds, seed + 1, groups).split(X, y, groups))
    model = CalibratedClassifierCV(est, method=calibration, cv=cv, ensemble=False)
    model.fit(X, y)
    return model, best_params


def fit_risk_model(
    estimator: Any,
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    *,
    param_grid: Mapping[str, list[Any]] | None = None,
    outer_folds: int = 5,
    inner_folds: int = 3,
    calibration: str = "sigmoid",
    calibration_folds: int = 5,
    seed: int = 0,
    groups: Any = None,
    progress: bool = False,
) -> FitResult:
    """Nested CV (if ``outer_folds >= 2``) for out-of-fold probabilities, then the final fit.

    Args:
        estimator: an unfitted sklearn-style classifier.
        X: imputed training features; y: 0/1 outcome.
        param_grid: grid for the inner ``GridSearchCV`` (None: no tuning).
        outer_folds: folds of the outer CV (0 or 1 to skip it).
        calibration: ``sigmoid`` (Platt) or ``isotonic``.
        groups: cluster labels (patients) kept within one fold.
    """
    from sklearn.metrics import roc_auc_score

    if calibration not in ("sigmoid", "isotonic"):
        raise ValueError(f"calibration must be 'sigmoid' or 'isotonic', got {calibration!r}")
    y = np.asarray(y, int)
    check_enough_per_class(y, outer_folds, max(inner_folds if param_grid else 0, calibration_folds))
    kw = dict(
        param_grid=param_grid,
        inner_folds=inner_folds,
        calibration=calibration,
        calibration_folds=calibration_folds,
        seed=seed,
    )
    oof = None
    fold_auc: list[float] = []
    if outer_folds and outer_folds >= 2:
        oof = np.full(len(y), np.nan)
        splits = list(_splitter(outer_folds, seed + 7, groups).split(X, y, groups))
        it = splits
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(splits, desc="outer CV", unit="fold")
        for tr, te in it:
            g = None if groups is None else np.asarray(groups)[tr]
            m, _ = _fit_once(estimator, X.iloc[tr], y[tr], groups=g, **kw)
            oof[te] = m.predict_proba(X.iloc[te])[:, 1]
            if len(np.unique(y[te])) == 2:
                fold_auc.append(float(roc_auc_score(y[te], oof[te])))
    t0 = time.perf_counter()
    model, best = _fit_once(estimator, X, y, groups=groups, **kw)
    seconds = time.perf_counter() - t0
    log.info("final fit %.1fs, best params %s", seconds, best)
    return FitResult(model, best, oof, seconds, fold_auc)
