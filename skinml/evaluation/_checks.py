"""Input validation shared by the evaluation functions.

Predictions reach this package from training loops, exported models and CSV
files; a wrong shape or a label outside the class list must fail loudly with
a message that says which argument is wrong and how to fix it, not produce a
plausible-looking metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skinml.errors import DataError


def check_probs(
    probs: np.ndarray | Sequence, *, name: str = "probs", atol: float = 1e-3
) -> np.ndarray:
    """Return ``probs`` as a float (n, K) array of finite probabilities whose rows sum to 1."""
    arr = np.asarray(probs, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(
            f"{name} has shape {arr.shape}",
            column=name,
            expected="a 2-D array (n_cases, n_classes) with at least 2 classes",
            fix="pass one row of class probabilities per case (for a binary model, stack "
            "[1 - p, p])",
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty", column=name, expected="at least one case")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(arr), axis=1))[0])
        raise DataError(f"{name} contains NaN or infinite values", row=bad, column=name)
    if arr.min() < -atol or arr.max() > 1 + atol:
        raise DataError(
            f"{name} has values outside [0, 1] (min {arr.min():.3g}, max {arr.max():.3g})",
            column=name,
            expected="probabilities",
            fix="these look like logits: apply a softmax, e.g. "
            "TemperatureScaler().fit(val_logits, y_val).predict_proba(logits)",
        )
    sums = arr.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if off.size:
        raise DataError(
            f"{name} rows do not sum to 1 (row {int(off[0])} sums to {sums[off[0]]:.4f}; "
            f"{off.size} rows in all)",
            row=int(off[0]),
            column=name,
            expected="softmax probabilities over all classes",
            fix="apply scipy.special.softmax(logits, axis=1) before evaluating",
        )
    return np.clip(arr, 0.0, 1.0)


def check_labels(
    y_true: np.ndarray | Sequence,
    n_classes: int,
    *,
    classes: Sequence[str] | None = None,
    n: int | None = None,
    name: str = "y_true",
) -> np.ndarray:
    """Return ``y_true`` as integer class indices in ``[0, n_classes)``.

    String labels are mapped through ``classes`` so that callers can pass a
    manifest's ``label`` column directly.
    """
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise DataError(
            f"{name} has shape {arr.shape}",
            column=name,
            expected="a 1-D array of class indices or class names",
        )
    if n is not None and len(arr) != n:
        raise DataError(
            f"{name} has {len(arr)} cases but the predictions have {n}",
            column=name,
            fix="pass labels and predictions for the same cases, in the same order",
        )
    if arr.dtype.kind in "OUS":
        if classes is None:
            raise DataError(
                f"{name} holds class names but no class list was given",
                column=name,
                fix="pass classes=[...] in the model's output order, or integer labels",
            )
        lookup = {str(c): i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in arr} - set(lookup))
        if unknown:
            raise DataError(
                f"{name} contains labels {unknown[:10]} that are not among the classes",
                column=name,
                expected=f"one of {list(lookup)}",
                fix="map the labels to the model's class names first",
            )
        return np.array([lookup[str(v)] for v in arr], dtype=int)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise DataError(
                f"{name} contains non-integer or missing labels",
                column=name,
                expected="integer class indices",
                fix="drop cases without a label before evaluating",
            )
        arr = arr.astype(int)
    if arr.dtype.kind not in "iub":
        raise DataError(f"{name} has dtype {arr.dtype}", column=name, expected="integer labels")
    arr = arr.astype(int)
    bad = np.flatnonzero((arr < 0) | (arr >= n_classes))
    if bad.size:
        raise DataError(
            f"{name} contains label {int(arr[bad[0]])} outside [0, {n_classes})",
            row=int(bad[0]),
            column=name,
            expected=f"class indices 0..{n_classes - 1} matching the probability columns",
            fix="check that the class order of the labels and the model output agree",
        )
    return arr


def check_classes(classes: Sequence[str], n_classes: int, malignant: Sequence[str]) -> list[int]:
    """Validate the class list against the probability columns; return malignant indices."""
    names = [str(c) for c in classes]
    if len(names) != n_classes:
        raise DataError(
            f"{len(names)} class names given for {n_classes} probability columns",
            column="classes",
            fix="pass the class names in the model's output order",
        )
    if len(set(names)) != len(names):
        raise DataError(f"class names are not unique: {names}", column="classes")
    unknown = [m for m in malignant if str(m) not in names]
    if unknown:
        raise DataError(
            f"malignant classes {unknown} are not among the classes {names}",
            column="malignant",
            fix="name malignant classes exactly as in the class list",
        )
    return [names.index(str(m)) for m in malignant]


def check_binary(y: np.ndarray | Sequence, *, n: int, name: str) -> np.ndarray:
    """Return a 0/1 integer array of length ``n``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(
            f"{name} has shape {arr.shape} but {n} scores were given",
            column=name,
            fix="pass one 0/1 (or boolean) label per score",
        )
    if arr.dtype == bool:
        return arr.astype(int)
    if not np.all(np.isin(arr, (0, 1))):
        raise DataError(
            f"{name} has values other than 0/1: {sorted(set(np.unique(arr).tolist()))[:5]}",
            column=name,
            expected="1 for malignant, 0 for benign",
        )
    return arr.astype(int)


def check_scores(p: np.ndarray | Sequence, *, name: str) -> np.ndarray:
    """Return a finite 1-D float array of probabilities in [0, 1]."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(
            f"{name} has shape {arr.shape}",
            column=name,
            expected="a non-empty 1-D array of probabilities",
            fix="use malignant_probability(probs, classes, malignant) to get one per case",
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise DataError(
            f"{name} has values outside [0, 1] or missing values",
            column=name,
            expected="probabilities",
        )
    return arr
