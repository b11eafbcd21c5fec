"""Pure classification metrics, fast enough to sit inside a bootstrap loop.

Accuracy, balanced accuracy and the ROC AUC are called thousands of times per
report (every bootstrap resample, every subgroup). scikit-learn's
``roc_auc_score`` costs about 4 ms a call in validation and curve building, so
the AUC here is the Mann-Whitney rank statistic (identical to it, ties
counting one half) computed for all classes from one ``rankdata`` call. The
tests check every metric here against scikit-learn. F1 and the confusion
matrix come from scikit-learn directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from skinml.evaluation.calibration import classwise_ece
from skinml.stats import wilson_ci


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of cases whose predicted class is the true class."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true``.

    Same definition as :func:`sklearn.metrics.balanced_accuracy_score`
    (``adjusted=False``): classes absent from ``y_true`` do not count.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    present = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == k] == k) for k in present]))


def defined_auc_classes(y_true: np.ndarray, n_classes: int) -> list[int]:
    """Classes with at least one positive and one negative case (their AUC is defined)."""
    counts = np.bincount(np.asarray(y_true), minlength=n_classes)
    return [k for k in range(n_classes) if 0 < counts[k] < len(y_true)]


def _rank_auc(hit: np.ndarray, ranks: np.ndarray) -> float:
    """AUC from the (average) ranks of the scores: P(score_pos > score_neg) + 0.5 P(tie)."""
    n_pos = int(hit.sum())
    n_neg = len(hit) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC is not defined when only one class is present")
    return float((ranks[hit].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auc(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[int] | None = None) -> float:
    """Unweighted mean of one-vs-rest ROC AUCs (sklearn ``multi_class="ovr"``, macro).

    Args:
        labels: the classes to average over. Defaults to every class whose AUC is
            defined. A bootstrap passes the classes defined on the full data, so
            that a resample missing one of them raises ``ValueError`` (and is
            skipped) instead of silently averaging over fewer classes.

    Raises:
        ValueError: when a class in ``labels`` has no positive or no negative case.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    if labels is None:
        labels = defined_auc_classes(y_true, probs.shape[1])
    if len(labels) < 2:
        raise ValueError("macro AUC needs at least two classes with positive cases")
    ranks = rankdata(probs[:, list(labels)], axis=0)
    return float(np.mean([_rank_auc(y_true == k, ranks[:, j]) for j, k in enumerate(labels)]))


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of a binary problem; raises ``ValueError`` if only one class is present."""
    return _rank_auc(np.asarray(y_true).astype(bool), rankdata(np.asarray(score, dtype=float)))


def per_class_table(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    *,
    malignant: Sequence[str] = (),
    n_bins: int = 15,
) -> pd.DataFrame:
    """Per-class metrics, one row per class in model output order.

    Columns: ``class``, ``malignant``, ``n`` (true cases), ``n_predicted``,
    ``sensitivity`` (recall) with its Wilson 95% interval, ``specificity`` with
    its Wilson interval, ``precision``, ``f1``, ``auc`` (one-vs-rest) and
    ``ece`` (class-wise). Undefined values are NaN, never dropped rows.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    n_classes = probs.shape[1]
    labels = list(range(n_classes))
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan
    )
    ece = classwise_ece(y_true, probs, n_bins)
    rows = []
    for k, name in enumerate(classes):
        tp = int(cm[k, k])
        fn = int(cm[k].sum() - tp)
        fp = int(cm[:, k].sum() - tp)
        tn = int(cm.sum() - tp - fn - fp)
        sens_lo, sens_hi = wilson_ci(tp, tp + fn)
        spec_lo, spec_hi = wilson_ci(tn, tn + fp)
        try:
            auc = binary_auc(y_true == k, probs[:, k])
        except ValueError:
            auc = float("nan")
        rows.append(
            {
                "class": str(name),
                "malignant": str(name) in {str(m) for m in malignant},
                "n": int(support[k]),
                "n_predicted": int(cm[:, k].sum()),
                "sensitivity": float(rec[k]) if tp + fn else float("nan"),
                "sensitivity_ci_low": sens_lo,
                "sensitivity_ci_high": sens_hi,
                "specificity": tn / (tn + fp) if tn + fp else float("nan"),
                "specificity_ci_low": spec_lo,
                "specificity_ci_high": spec_hi,
                "precision": float(prec[k]),
                "f1": float(f1[k]),
                "auc": auc,
                "ece": ece[k],
            }
        )
    return pd.DataFrame(rows)
