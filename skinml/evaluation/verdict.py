"""Plain-language warnings about a model's test figures: chance-level AUC, useless operating point.

A table of numbers with intervals does not tell a busy reader that "AUC 0.59,
95% CI 0.41-0.77" means the model may be guessing. These pure functions turn
such figures into sentences that skinml-train prints, the model file carries
(``ModelMetadata.warnings``), the model card shows and skinml-predict repeats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from skinml.stats import format_proportion

#: the AUC of a model that ranks cases at random
CHANCE_AUC = 0.5


def auc_warning(
    value: float,
    ci_low: float | None,
    ci_high: float | None,
    *,
    what: str = "AUC",
    split: str = "test",
    n: int | None = None,
) -> str | None:
    """A warning when the AUC interval includes 0.5 (or, without an interval, AUC <= 0.5).

    Example: ``not better than chance on this test set: AUC 0.59, 95% CI 0.41-0.77``.
    """
    if value is None or not math.isfinite(value):
        return None
    cases = f" (n={n})" if n is not None else ""
    has_ci = ci_low is not None and ci_high is not None and math.isfinite(ci_low)
    if has_ci and ci_low <= CHANCE_AUC:
        return (
            f"not better than chance on this {split} set: {what} {value:.2f}, "
            f"95% CI {ci_low:.2f}-{ci_high:.2f}{cases}; the interval includes 0.5"
        )
    if not has_ci and value <= CHANCE_AUC:
        return f"not better than chance on this {split} set: {what} {value:.2f}{cases}"
    return None


def operating_point_warnings(
    sensitivity: Any, specificity: Any, rule: str, *, split: str = "test"
) -> list[str]:
    """Warnings when the malignancy operating point is useless on ``split``.

    ``sensitivity``/``specificity`` are :class:`~skinml.stats.ProportionCI` (counts and
    interval). Useless means an interval reaching 0: the flag misses every malignant
    case (or may), or flags every benign case (or may), so the threshold puts (nearly)
    everything in one class.
    """
    out = []
    for name, ci, failure in (
        ("sensitivity", sensitivity, "it flags none of the {n} malignant cases"),
        ("specificity", specificity, "it flags every one of the {n} benign cases as malignant"),
    ):
        if getattr(ci, "successes", None) is None or not ci.n:
            continue
        if not (ci.successes == 0 or (math.isfinite(ci.ci_low) and ci.ci_low <= 0.0)):
            continue
        shown = format_proportion(ci.successes, ci.n, ci.ci_low, ci.ci_high)
        what = failure.format(n=ci.n) if ci.successes == 0 else f"its {name} interval reaches 0"
        out.append(
            f"the malignancy operating point is useless on this {split} set: {what} "
            f"({name} {shown}); flag rule: {rule}"
        )
    return out


def single_class_warning(confusion: np.ndarray, classes: Sequence[str], split: str) -> str | None:
    """A warning when the arg-max prediction is the same class for every case."""
    cm = np.asarray(confusion)
    predicted = np.flatnonzero(cm.sum(axis=0))
    if len(classes) < 2 or len(predicted) != 1 or cm.sum() < 2:
        return None
    return (
        f"the model predicts the same class ({classes[predicted[0]]}) for all "
        f"{int(cm.sum())} {split} images (arg-max)"
    )


def evaluation_warnings(ev: Any) -> list[str]:
    """Every warning for one :class:`~skinml.evaluation.Evaluation` (usually the test split)."""
    h = ev.headline
    out: list[str] = []
    binary = len(ev.classes) == 2
    aucs = []
    if not (binary and ev.malignant):
        aucs.append(("macro_auc", "AUC" if binary else "macro AUC"))
    if ev.malignant:
        aucs.append(("malignant_auc", "AUC" if binary else "malignancy AUC"))
    for key, what in aucs:
        ci = h.get(key)
        if ci is not None:
            w = auc_warning(ci.value, ci.ci_low, ci.ci_high, what=what, split=ev.split, n=ev.n)
            if w:
                out.append(w)
    if ev.malignant:
        out += operating_point_warnings(
            h.get("malignant_sensitivity"),
            h.get("malignant_specificity"),
            ev.rule_text(),
            split=ev.split,
        )
    w = single_class_warning(ev.confusion, ev.classes, ev.split)
    if w:
        out.append(w)
    return out
