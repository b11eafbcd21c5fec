"""Malignancy probability and the operating threshold chosen on validation data.

A screening model is used at one operating point: "flag as suspicious above
t". That point must be chosen on validation data (choosing it on test data
makes the test sensitivity a promise nobody can keep) and must record the rule
that chose it, because the model file carries both to the clinician.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skinml.errors import ConfigError, DataError
from skinml.evaluation._checks import check_binary, check_classes, check_probs, check_scores

#: split names a threshold may never be fitted on
FORBIDDEN_SPLITS = ("test", "holdout")


def malignant_probability(
    probs: np.ndarray, classes: Sequence[str], malignant: Sequence[str]
) -> np.ndarray:
    """Probability that a case is malignant: the sum over the malignant classes.

    Args:
        probs: class probabilities, shape (n, K).
        classes: the K class names in column order.
        malignant: names of the malignant classes (e.g. ``["mel", "bcc", "akiec"]``).

    Returns:
        Shape (n,) array in [0, 1].
    """
    p = check_probs(probs)
    idx = check_classes(classes, p.shape[1], malignant)
    return np.clip(p[:, idx].sum(axis=1), 0.0, 1.0)


def sensitivity_specificity(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Sensitivity (recall of 1) and specificity (recall of 0) of binary predictions.

    NaN where undefined (no positives or no negatives), rather than an error,
    so that subgroup tables can show "not defined" instead of dropping a row.
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    pos, neg = y_true.sum(), (~y_true).sum()
    sens = float((y_pred & y_true).sum() / pos) if pos else float("nan")
    spec = float((~y_pred & ~y_true).sum() / neg) if neg else float("nan")
    return sens, spec


def threshold_for_sensitivity(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """The largest threshold ``t`` with sensitivity of ``p >= t`` at least ``target`` (pure).

    Sensitivity only changes at scores of positive cases, so ``t`` is the
    ``ceil(target * n_pos)``-th largest positive score: any larger threshold
    would miss one positive too many.
    """
    pos = np.sort(np.asarray(p, dtype=float)[np.asarray(y) == 1])[::-1]
    if pos.size == 0:
        raise DataError(
            "no malignant cases to choose a sensitivity threshold on",
            column="y_is_malignant",
            fix="use a validation split that contains malignant cases",
        )
    k = max(1, math.ceil(target * pos.size - 1e-9))
    return float(pos[k - 1])


class MalignancyThreshold(BaseEstimator):
    """Pick the malignancy threshold that reaches a target sensitivity on validation.

    Args:
        target_sensitivity: the minimum validation sensitivity, in (0, 1].

    Attributes:
        threshold_: flag a case when ``p_malignant >= threshold_``.
        sensitivity_, specificity_: achieved on the validation data.
        n_, n_malignant_: validation cases and malignant cases.
        rule_: human-readable rule, stored in the model file.
        fitted_on_: the split name given to ``fit``.

    Example:
        >>> picker = MalignancyThreshold(0.95).fit(p_val, y_val_malignant)
        >>> flags = picker.predict(p_test)
    """

    def __init__(self, target_sensitivity: float = 0.95) -> None:
        self.target_sensitivity = target_sensitivity

    def fit(
        self,
        p_malignant: np.ndarray | Sequence,
        y_is_malignant: np.ndarray | Sequence,
        *,
        split: str = "validation",
    ) -> MalignancyThreshold:
        """Choose the threshold on validation scores.

        Args:
            p_malignant: malignancy probability per validation case.
            y_is_malignant: 1 (or True) for malignant cases.
            split: name of the split the data come from; ``"test"`` is refused so
                that a test-set threshold cannot slip through.

        Raises:
            ConfigError: for a target outside (0, 1] or ``split="test"``.
            DataError: for mismatched inputs or no malignant cases.
        """
        target = float(self.target_sensitivity)
        if not 0.0 < target <= 1.0:
            raise ConfigError(
                f"target_sensitivity={self.target_sensitivity}",
                column="target_sensitivity",
                expected="a value in (0, 1], e.g. 0.95",
            )
        if str(split).lower() in FORBIDDEN_SPLITS:
            raise ConfigError(
                f"refusing to choose an operating threshold on the {split!r} split",
                column="split",
                fix="fit the threshold on validation predictions and only apply it to test",
            )
        p = check_scores(p_malignant, name="p_malignant")
        y = check_binary(y_is_malignant, n=len(p), name="y_is_malignant")
        self.threshold_ = threshold_for_sensitivity(p, y, target)
        self.sensitivity_, self.specificity_ = sensitivity_specificity(y, p >= self.threshold_)
        self.n_ = len(p)
        self.n_malignant_ = int(y.sum())
        self.fitted_on_ = str(split)
        self.rule_ = (
            f"sensitivity >= {target:g} on {split} (n={self.n_}, "
            f"{self.n_malignant_} malignant): largest threshold reaching the target"
        )
        return self

    def predict(self, p_malignant: np.ndarray | Sequence) -> np.ndarray:
        """1 where ``p_malignant >= threshold_`` (malignancy suspected), else 0."""
        check_is_fitted(self, "threshold_")
        p = check_scores(p_malignant, name="p_malignant")
        return (p >= self.threshold_).astype(int)

    def to_operating_threshold(self, name: str = "malignant"):
        """The model-file record (:class:`skinml.modelfile.OperatingThreshold`)."""
        from skinml.modelfile import OperatingThreshold

        check_is_fitted(self, "threshold_")
        return OperatingThreshold(
            name=name,
            threshold=float(self.threshold_),
            rule=self.rule_,
            chosen_on=self.fitted_on_,
            validation_sensitivity=float(self.sensitivity_),
            validation_specificity=float(self.specificity_),
        )
