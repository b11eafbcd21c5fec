"""Calibration: how far predicted probabilities are from observed frequencies, and fixing it.

A clinician reads "0.8 melanoma" as "eight in ten such lesions are melanoma".
Networks trained with cross-entropy are usually over-confident, so we measure
the expected calibration error (ECE, top-label and per class) and correct it
with temperature scaling (Guo et al. 2017), fitted on validation logits only.
Temperature scaling divides all logits by one scalar, so it never changes the
predicted class, accuracy or AUC; it only makes the probabilities honest.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skinml.errors import ConfigError, DataError
from skinml.evaluation._checks import check_labels, check_probs


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins on [0, 1], right-closed: (0, 1/B], ..., with 0 in the first bin."""
    if n_bins < 1:
        raise ConfigError(f"n_bins={n_bins}", column="n_bins", expected="an integer >= 1")
    return np.clip(np.ceil(p * n_bins).astype(int) - 1, 0, n_bins - 1)


def _binary_ece(hit: np.ndarray, p: np.ndarray, n_bins: int) -> float:
    """Weighted mean gap |observed frequency - mean prediction| over equal-width bins."""
    idx = _bin_index(p, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    gap = np.abs(
        np.bincount(idx, weights=hit, minlength=n_bins)
        - np.bincount(idx, weights=p, minlength=n_bins)
    )
    return float(gap.sum() / count.sum())


def expected_calibration_error(
    y_true: np.ndarray | Sequence, probs: np.ndarray, n_bins: int = 15
) -> float:
    """Top-label expected calibration error.

    The confidence of each case is its largest class probability; the ECE is
    the case-weighted mean, over equal-width confidence bins, of
    ``|accuracy - mean confidence|`` (Naeini et al. 2015; Guo et al. 2017).

    Args:
        y_true: class indices, shape (n,).
        probs: class probabilities, shape (n, K).
        n_bins: number of equal-width bins on [0, 1].

    Returns:
        ECE in [0, 1]; 0 is perfectly calibrated.
    """
    p = check_probs(probs)
    y = check_labels(y_true, p.shape[1], n=len(p))
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(float)
    return _binary_ece(hit, conf, n_bins)


def classwise_ece(
    y_true: np.ndarray | Sequence, probs: np.ndarray, n_bins: int = 15
) -> dict[int, float]:
    """One-vs-rest ECE of every class's probability column (Kull et al. 2019).

    Top-label ECE hides miscalibration of rare classes (a melanoma column that
    is always too low barely moves it); the per-class view shows it.

    Returns:
        ``{class_index: ece}`` for every column of ``probs``.
    """
    p = check_probs(probs)
    y = check_labels(y_true, p.shape[1], n=len(p))
    return {k: _binary_ece((y == k).astype(float), p[:, k], n_bins) for k in range(p.shape[1])}


def reliability_bins(
    y_true: np.ndarray | Sequence, probs: np.ndarray, n_bins: int = 15
) -> pd.DataFrame:
    """The table behind a reliability diagram (top-label).

    Returns:
        One row per bin: ``bin_low``, ``bin_high``, ``n``, ``confidence`` (mean),
        ``accuracy``; empty bins have NaN confidence and accuracy.
    """
    p = check_probs(probs)
    y = check_labels(y_true, p.shape[1], n=len(p))
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(float)
    idx = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=hit, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "n": count,
            "confidence": mean_conf,
            "accuracy": acc,
        }
    )


def calibration_table(
    y_true: np.ndarray | Sequence,
    probs_before: np.ndarray,
    probs_after: np.ndarray | None,
    classes: Sequence[str],
    *,
    n_bins: int = 15,
) -> pd.DataFrame:
    """ECE overall (top-label) and per class, before and (optionally) after calibration.

    Returns:
        Rows ``overall`` then one per class; columns ``scope``, ``n``,
        ``ece_before`` and ``ece_after`` (NaN when ``probs_after`` is None).
    """
    before = check_probs(probs_before, name="probs_before")
    y = check_labels(y_true, before.shape[1], classes=classes, n=len(before))
    after = None if probs_after is None else check_probs(probs_after, name="probs_after")
    if after is not None and after.shape != before.shape:
        raise DataError(
            f"probs_after has shape {after.shape}, probs_before {before.shape}",
            column="probs_after",
            fix="pass the same cases before and after calibration",
        )
    nan = float("nan")
    rows = [
        {
            "scope": "overall",
            "n": len(y),
            "ece_before": expected_calibration_error(y, before, n_bins),
            "ece_after": nan if after is None else expected_calibration_error(y, after, n_bins),
        }
    ]
    cw_before = classwise_ece(y, before, n_bins)
    cw_after = None if after is None else classwise_ece(y, after, n_bins)
    for k, name in enumerate(classes):
        rows.append(
            {
                "scope": str(name),
                "n": int((y == k).sum()),
                "ece_before": cw_before[k],
                "ece_after": nan if cw_after is None else cw_after[k],
            }
        )
    return pd.DataFrame(rows)


def _check_logits(logits: np.ndarray | Sequence, name: str = "logits") -> np.ndarray:
    arr = np.asarray(logits, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        raise DataError(
            f"{name} has shape {arr.shape}",
            column=name,
            expected="a 2-D array (n_cases, n_classes >= 2) of raw network outputs",
            fix="pass the logits before softmax (for a one-logit binary model, stack "
            "[zeros, logit])",
        )
    if not np.all(np.isfinite(arr)):
        row = int(np.flatnonzero(~np.all(np.isfinite(arr), axis=1))[0])
        raise DataError(f"{name} contains NaN or infinite values", row=row, column=name)
    return arr


def mean_nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of labels ``y`` under ``softmax(logits / temperature)``."""
    logp = log_softmax(logits / temperature, axis=1)
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(
    logits: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature that minimises validation NLL (pure function).

    The search runs over ``log T`` (bounded Brent), so that the scale is
    symmetric: halving and doubling the temperature are equally far apart.
    """
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(
        lambda log_t: mean_nll(logits, y, float(np.exp(log_t))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(res.x))


class TemperatureScaler(BaseEstimator):
    """Temperature scaling fitted on validation logits (sklearn estimator contract).

    Args:
        bounds: the range searched for the temperature. A result at a bound
            means the logits are degenerate (e.g. a constant model) and is
            warned about.
        n_bins: bins for the ECE recorded before and after scaling.

    Attributes:
        temperature_: the fitted temperature (> 1 softens over-confident outputs).
        n_classes_: number of logit columns seen in ``fit``.
        n_samples_: number of validation cases.
        nll_before_, nll_after_: validation NLL at T=1 and at the fitted T.
        ece_before_, ece_after_: validation top-label ECE at T=1 and at the fitted T.

    Example:
        >>> scaler = TemperatureScaler().fit(val_logits, y_val)
        >>> test_probs = scaler.predict_proba(test_logits)
    """

    def __init__(self, bounds: tuple[float, float] = (0.05, 20.0), n_bins: int = 15) -> None:
        self.bounds = bounds
        self.n_bins = n_bins

    def fit(self, logits: np.ndarray, y: np.ndarray | Sequence) -> TemperatureScaler:
        """Fit the temperature on validation logits ``(n, K)`` and labels ``(n,)``.

        Raises:
            DataError: for a wrong shape, non-finite logits or labels outside ``[0, K)``.
            ConfigError: for invalid ``bounds``.
        """
        z = _check_logits(logits)
        labels = check_labels(y, z.shape[1], n=len(z), name="y")
        lo, hi = self.bounds
        if not (0 < lo < 1 < hi):
            raise ConfigError(
                f"bounds={self.bounds}",
                column="bounds",
                expected="(low, high) with 0 < low < 1 < high",
            )
        t = fit_temperature(z, labels, (lo, hi))
        if np.isclose(t, lo, rtol=1e-3) or np.isclose(t, hi, rtol=1e-3):
            warnings.warn(
                f"fitted temperature {t:.3g} lies at the search bound {self.bounds}; the "
                "validation logits may be degenerate (constant, or perfectly separated)",
                RuntimeWarning,
                stacklevel=2,
            )
        self.temperature_ = t
        self.n_classes_ = z.shape[1]
        self.n_features_in_ = z.shape[1]
        self.n_samples_ = len(z)
        self.nll_before_ = mean_nll(z, labels, 1.0)
        self.nll_after_ = mean_nll(z, labels, t)
        self.ece_before_ = expected_calibration_error(labels, softmax(z, axis=1), self.n_bins)
        self.ece_after_ = expected_calibration_error(labels, softmax(z / t, axis=1), self.n_bins)
        return self

    def _checked(self, logits: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "temperature_")
        z = _check_logits(logits)
        if z.shape[1] != self.n_classes_:
            raise DataError(
                f"logits have {z.shape[1]} columns but the scaler was fitted on {self.n_classes_}",
                column="logits",
                fix="use the same model (and class order) for validation and test",
            )
        return z

    def transform(self, logits: np.ndarray) -> np.ndarray:
        """Scaled logits ``logits / temperature_``."""
        return self._checked(logits) / self.temperature_

    def predict_proba(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``softmax(logits / temperature_)``."""
        return softmax(self.transform(logits), axis=1)

    def to_calibration(self, fitted_on: str = "validation"):
        """The model-file record (:class:`skinml.modelfile.Calibration`) of this scaler."""
        from skinml.modelfile import Calibration

        check_is_fitted(self, "temperature_")
        return Calibration(
            method="temperature",
            temperature=float(self.temperature_),
            fitted_on=fitted_on,
            ece_before=float(self.ece_before_),
            ece_after=float(self.ece_after_),
        )
