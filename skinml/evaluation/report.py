"""``evaluate``: every headline metric of a classifier on one split, with 95% CIs.

PRODUCT.md: every reported metric on real data carries a confidence interval
and says which split, how many cases and which seed. Proportions (accuracy,
malignant sensitivity and specificity) get Wilson score intervals on their real
counts, because a bootstrap of 8/8 collapses to "1.000 [1.000, 1.000]"; AUC and
balanced accuracy get percentile bootstrap intervals (patients resampled as
clusters); the ECE, which is biased upwards, its bias-corrected estimate and basic
bootstrap interval. ``Evaluation`` keeps this together and turns it into
MLflow metrics, an interval table, a JSON document, or the model file's
``MetricWithCI`` records.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix
from tqdm.auto import tqdm

from skinml.errors import ConfigError, DataError
from skinml.evaluation._checks import check_classes, check_labels, check_probs
from skinml.evaluation.calibration import expected_calibration_error
from skinml.evaluation.metrics import (
    accuracy,
    balanced_accuracy,
    binary_auc,
    defined_auc_classes,
    macro_auc,
    per_class_table,
)
from skinml.evaluation.thresholds import MalignancyThreshold, sensitivity_specificity
from skinml.stats import (
    BootstrapCI,
    ProportionCI,
    bootstrap_ci,
    proportion_ci,
    widen_for_clusters,
)

HEADLINE = (
    "accuracy",
    "balanced_accuracy",
    "macro_auc",
    "malignant_sensitivity",
    "malignant_specificity",
    "malignant_auc",
    "ece",
)
#: headline metrics that are proportions k/n (Wilson intervals on their counts)
PROPORTIONS = ("accuracy", "malignant_sensitivity", "malignant_specificity")
Interval = BootstrapCI | ProportionCI


def _json(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so the result is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metric_key(name: str) -> str:
    """A class or level name made safe for an MLflow metric key."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "unnamed"


def safe_bootstrap(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n_bootstrap: int,
    seed: int,
    groups: np.ndarray | None,
    bias_corrected: bool = False,
) -> BootstrapCI:
    """``bootstrap_ci`` that reports an undefined metric as NaN instead of raising.

    A metric can be undefined on a whole split (malignant sensitivity with no
    malignant case); the report must show that, not crash. ``n_bootstrap=0``
    gives the point estimate alone. ``bias_corrected`` is for metrics in [0, 1]
    that are biased upwards, i.e. the ECE (see :func:`~skinml.stats.bootstrap_ci`).
    """
    n = len(arrays[0])
    nan = float("nan")
    try:
        if n_bootstrap <= 0:
            return BootstrapCI(float(metric(*arrays)), nan, nan, n, 0, seed)
        return bootstrap_ci(
            metric,
            *arrays,
            n_bootstrap=n_bootstrap,
            seed=seed,
            groups=groups,
            bias_corrected=bias_corrected,
            bounds=(0.0, 1.0),
        )
    except ValueError:
        return BootstrapCI(nan, nan, nan, n, max(n_bootstrap, 0), seed)


def proportion_with_clusters(
    successes: int,
    n: int,
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n_bootstrap: int,
    seed: int,
    groups: np.ndarray | None,
) -> ProportionCI:
    """Wilson interval of ``successes / n``, widened by the cluster bootstrap when clustered.

    Cases are clustered when ``groups`` has fewer distinct ids than cases (several
    images of one patient); only then is the bootstrap run.
    """
    ci = proportion_ci(successes, n)
    clustered = groups is not None and len(np.unique(groups)) < len(groups)
    if not clustered or n_bootstrap <= 0 or n == 0:
        return ci
    boot = safe_bootstrap(metric, *arrays, n_bootstrap=n_bootstrap, seed=seed, groups=groups)
    return widen_for_clusters(ci, boot)


def resolve_threshold(
    threshold: float | MalignancyThreshold | None,
) -> tuple[float | None, str]:
    """The numeric threshold and the rule that chose it."""
    if threshold is None:
        return None, "predicted class is malignant (argmax)"
    if isinstance(threshold, MalignancyThreshold):
        if not hasattr(threshold, "threshold_"):
            raise ConfigError(
                "the MalignancyThreshold passed to evaluate() is not fitted",
                column="threshold",
                fix="fit it on validation predictions first: "
                "MalignancyThreshold(0.95).fit(p_val, y_val_malignant)",
            )
        return float(threshold.threshold_), threshold.rule_
    t = float(threshold)
    if not 0.0 <= t <= 1.0:
        raise ConfigError(f"threshold={t}", column="threshold", expected="a value in [0, 1]")
    return t, "fixed threshold given by the caller"


def malignant_predictions(
    probs: np.ndarray, malignant_idx: Sequence[int], threshold: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Malignancy probability and the 0/1 flag (threshold, or argmax in a malignant class)."""
    p_mal = probs[:, list(malignant_idx)].sum(axis=1)
    if threshold is None:
        flag = np.isin(probs.argmax(axis=1), list(malignant_idx))
    else:
        flag = p_mal >= threshold
    return p_mal, flag.astype(int)


@dataclass
class Evaluation:
    """All metrics of one classifier on one split.

    Attributes:
        headline: ``accuracy``, ``balanced_accuracy``, ``macro_auc``,
            ``malignant_sensitivity``, ``malignant_specificity``, ``malignant_auc``,
            ``ece`` (and ``ece_before_calibration`` when given). The proportions in
            ``PROPORTIONS`` are :class:`~skinml.stats.ProportionCI` (counts and Wilson
            interval); the others :class:`~skinml.stats.BootstrapCI`.
        per_class: see :func:`~skinml.evaluation.metrics.per_class_table`.
        confusion: counts, rows = true class, columns = arg-max predicted class (no
            malignancy threshold involved).
        n: number of cases; split: which split; seed, n_bootstrap: the bootstrap.
        threshold: the malignancy threshold used (None = argmax rule);
            threshold_rule: how it was chosen.
        n_groups: number of bootstrap clusters or None; group_unit: what a cluster is
            (``patients``, or ``lesions``/``images`` where the data has no patient IDs).

    Note:
        The binned ECE is biased upwards (noise in each bin only adds to its gap), the
        more so the smaller the sample, so a percentile interval could lie entirely
        above it. When bootstrapped, ``ece`` holds the bias-corrected estimate with
        the basic bootstrap interval (the estimate always lies inside) and
        ``plugin`` the uncorrected one, as the reliability diagram draws it.
    """

    headline: dict[str, Interval]
    per_class: pd.DataFrame
    confusion: np.ndarray
    n: int
    split: str
    seed: int
    n_bootstrap: int
    classes: tuple[str, ...]
    malignant: tuple[str, ...]
    threshold: float | None = None
    threshold_rule: str = ""
    n_groups: int | None = None
    group_unit: str = "patients"

    def flat_metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Flat ``{prefix}_{metric}[_ci_low|_ci_high]`` floats (``metrics.json``).

        Per-class sensitivity, specificity, F1, AUC and ECE are included as
        ``{prefix}_{class}_{metric}``. Undefined (NaN) values are left out,
        because MLflow charts cannot show them; ``to_dict`` keeps them as null.
        skinml-train logs these to MLflow without the ``_ci_`` keys, whose place
        there is :meth:`interval_table`.
        """
        p = metric_key(self.split if prefix is None else prefix)
        out: dict[str, float] = {f"{p}_n": float(self.n)}
        for name, ci in self.headline.items():
            for suffix, v in (("", ci.value), ("_ci_low", ci.ci_low), ("_ci_high", ci.ci_high)):
                if math.isfinite(v):
                    out[f"{p}_{name}{suffix}"] = float(v)
        if self.threshold is not None:
            out[f"{p}_malignant_threshold"] = float(self.threshold)
        for row in self.per_class.itertuples(index=False):
            for col in ("sensitivity", "specificity", "f1", "auc", "ece"):
                v = float(getattr(row, col))
                if math.isfinite(v):
                    out[f"{p}_{metric_key(row[0])}_{col}"] = v
        return out

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON document (NaN -> null) with everything, including ``flat_metrics()``."""
        return _json(
            {
                "split": self.split,
                "n": self.n,
                "seed": self.seed,
                "n_bootstrap": self.n_bootstrap,
                "n_groups": self.n_groups,
                "group_unit": self.group_unit,
                "classes": list(self.classes),
                "malignant": list(self.malignant),
                "threshold": self.threshold,
                "threshold_rule": self.threshold_rule,
                "headline": {k: v.as_dict() for k, v in self.headline.items()},
                "per_class": self.per_class.to_dict(orient="records"),
                "confusion": self.confusion.tolist(),
                "metrics": self.flat_metrics(),
            }
        )

    def interval_table(self) -> pd.DataFrame:
        """One row per defined headline metric: value, 95% CI, how it was computed, counts.

        Logged as an MLflow table artifact, so that ``_ci_low``/``_ci_high`` keys do not
        crowd the run's metric list.
        """
        rows = []
        for name, ci in self.headline.items():
            if not math.isfinite(ci.value):
                continue
            prop = isinstance(ci, ProportionCI)
            rows.append(
                {
                    "split": self.split,
                    "metric": name,
                    "value": ci.value,
                    "ci_low": ci.ci_low,
                    "ci_high": ci.ci_high,
                    "interval": ci.method,
                    "successes": ci.successes if prop else None,
                    "denominator": ci.n if prop else self.n,
                    "n_bootstrap": ci.n_bootstrap,
                    "seed": ci.seed,
                    "note": self._note(name),
                }
            )
        return pd.DataFrame(rows)

    def _note(self, name: str) -> str:
        plugin = getattr(self.headline[name], "plugin", None)
        if plugin is not None:
            return f"bias-corrected; uncorrected (plug-in) {plugin:.4f}"
        if name in ("malignant_sensitivity", "malignant_specificity"):
            return self.rule_text()
        if name in ("accuracy", "balanced_accuracy"):
            return "arg-max class"
        return ""

    def rule_text(self) -> str:
        """How a case is flagged malignant, with the threshold value when there is one."""
        if self.threshold is None:
            return self.threshold_rule
        return f"p_malignant >= {self.threshold:.4f} ({self.threshold_rule})"

    def model_metrics(self) -> dict[str, Any]:
        """Headline metrics as :class:`skinml.modelfile.MetricWithCI` for the model file."""
        from skinml.modelfile import MetricWithCI

        def opt(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        out = {}
        for k, ci in self.headline.items():
            if not math.isfinite(ci.value):
                continue
            prop = isinstance(ci, ProportionCI)
            out[f"{metric_key(self.split)}_{k}"] = MetricWithCI(
                value=float(ci.value),
                ci_low=opt(ci.ci_low),
                ci_high=opt(ci.ci_high),
                split=self.split,
                n=self.n,
                n_bootstrap=ci.n_bootstrap if prop else self.n_bootstrap,
                seed=self.seed,
                interval=ci.method,
                numerator=ci.successes if prop else None,
                denominator=ci.n if prop else None,
            )
        return out

    def summary(self) -> str:
        """A few lines for the console: split, n, seed and each headline metric with its CI."""
        head = f"{self.split}: n={self.n}, bootstrap {self.n_bootstrap}x (seed {self.seed})"
        if self.n_groups is not None:
            head += f", resampling {self.n_groups} {self.group_unit}"
        lines = [head]
        for k, v in self.headline.items():
            how = "Wilson" if isinstance(v, ProportionCI) else "bootstrap"
            lines.append(f"  {k:<24}{v} ({how})")
        lines.append("  accuracy and the confusion matrix use the arg-max class")
        lines.append(f"  malignancy flag: {self.rule_text()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _proportions(
    y: np.ndarray,
    pred: np.ndarray,
    y_mal: np.ndarray,
    flag: np.ndarray,
    has_malignant: bool,
    *,
    n_bootstrap: int,
    seed: int,
    g: np.ndarray | None,
) -> dict[str, ProportionCI]:
    """Accuracy, malignant sensitivity and specificity as counts with Wilson intervals."""
    kw = {"n_bootstrap": n_bootstrap, "seed": seed, "groups": g}
    out = {
        "accuracy": proportion_with_clusters(
            int((y == pred).sum()), len(y), accuracy, y, pred, **kw
        )
    }
    if not has_malignant:
        return out
    pos, neg = y_mal == 1, y_mal == 0
    out["malignant_sensitivity"] = proportion_with_clusters(
        int((flag[pos] == 1).sum()),
        int(pos.sum()),
        lambda a, b: sensitivity_specificity(a, b)[0],
        y_mal,
        flag,
        **kw,
    )
    out["malignant_specificity"] = proportion_with_clusters(
        int((flag[neg] == 0).sum()),
        int(neg.sum()),
        lambda a, b: sensitivity_specificity(a, b)[1],
        y_mal,
        flag,
        **kw,
    )
    return out


def evaluate(
    y_true: np.ndarray | Sequence,
    probs: np.ndarray,
    classes: Sequence[str],
    malignant: Sequence[str],
    *,
    threshold: float | MalignancyThreshold | None = None,
    groups: np.ndarray | Sequence | None = None,
    group_unit: str = "patients",
    n_bootstrap: int = 1000,
    seed: int = 0,
    split: str = "test",
    n_bins: int = 15,
    probs_before_calibration: np.ndarray | None = None,
) -> Evaluation:
    """Evaluate class probabilities against the truth, with 95% CIs.

    Proportions (accuracy, malignant sensitivity/specificity) get Wilson intervals on
    their counts, widened to the patient-cluster bootstrap when ``groups`` puts several
    cases in one cluster; AUCs, balanced accuracy and ECE get bootstrap intervals.

    Args:
        y_true: class indices (or class names) per case.
        probs: (calibrated) class probabilities, shape (n, K), columns in ``classes`` order.
        classes: class names in model output order.
        malignant: the malignant class names.
        threshold: malignancy operating point, a float or a ``MalignancyThreshold``
            fitted on validation. None flags a case when its argmax class is malignant.
            It is applied here, never fitted.
        groups: cluster ids for the bootstrap (patient or lesion ids), so that
            several images of one patient do not narrow the interval.
        group_unit: what one cluster is, in words (``patients``; ``lesions`` when the data
            has no patient IDs and lesion IDs stand in, as in HAM10000); see
            :func:`skinml.data.manifest.cluster_unit`.
        n_bootstrap: resamples per metric (0 = point estimates only).
        seed: bootstrap seed (every metric uses the same resamples).
        split: name of the split, used in keys and reports.
        n_bins: bins for the ECE.
        probs_before_calibration: optional uncalibrated probabilities of the same
            cases; adds ``ece_before_calibration`` to the headline.

    Returns:
        An :class:`Evaluation`.

    Raises:
        DataError: for inconsistent shapes, unknown labels or malignant names.
    """
    p = check_probs(probs)
    n, n_classes = p.shape
    mal_idx = check_classes(classes, n_classes, malignant)
    y = check_labels(y_true, n_classes, classes=classes, n=n)
    g = None
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise DataError(
                f"groups has shape {g.shape} for {n} cases",
                column="groups",
                fix="pass one patient (or lesion) id per case",
            )
        if pd.isna(g).any():
            raise DataError(
                "groups contains missing ids",
                column="groups",
                fix="give every case a patient id (or use the lesion id where it is missing)",
            )
    t, rule = resolve_threshold(threshold)
    pred = p.argmax(axis=1)
    p_mal, flag = malignant_predictions(p, mal_idx, t)
    y_mal = np.isin(y, mal_idx).astype(int)
    labels = defined_auc_classes(y, n_classes)

    def ece(yy: np.ndarray, pp: np.ndarray) -> float:
        return expected_calibration_error(yy, pp, n_bins)

    jobs: list[tuple[str, Callable[..., float], tuple[np.ndarray, ...]]] = [
        ("balanced_accuracy", balanced_accuracy, (y, pred)),
        ("macro_auc", lambda yy, pp: macro_auc(yy, pp, labels), (y, p)),
        ("malignant_auc", binary_auc, (y_mal, p_mal)),
        ("ece", ece, (y, p)),
    ]
    if probs_before_calibration is not None:
        before = check_probs(probs_before_calibration, name="probs_before_calibration")
        if before.shape != p.shape:
            raise DataError(
                f"probs_before_calibration has shape {before.shape}, probs {p.shape}",
                column="probs_before_calibration",
            )
        jobs.append(("ece_before_calibration", ece, (y, before)))
    if not mal_idx:
        jobs = [j for j in jobs if not j[0].startswith("malignant_")]
    headline: dict[str, Interval] = {}
    for name, fn, arrays in tqdm(jobs, desc=f"bootstrap {split}", leave=False, disable=None):
        headline[name] = safe_bootstrap(
            fn,
            *arrays,
            n_bootstrap=n_bootstrap,
            seed=seed,
            groups=g,
            bias_corrected=name.startswith("ece"),
        )
    headline.update(
        _proportions(y, pred, y_mal, flag, bool(mal_idx), n_bootstrap=n_bootstrap, seed=seed, g=g)
    )
    undefined = BootstrapCI(*(float("nan"),) * 3, n, n_bootstrap, seed)
    # every headline key is always present (NaN when undefined, e.g. no malignant classes)
    ordered = {k: headline.get(k, undefined) for k in HEADLINE}
    ordered.update({k: v for k, v in headline.items() if k not in ordered})
    return Evaluation(
        headline=ordered,
        per_class=per_class_table(y, p, classes, malignant=malignant, n_bins=n_bins),
        confusion=confusion_matrix(y, pred, labels=list(range(n_classes))),
        n=n,
        split=split,
        seed=seed,
        n_bootstrap=n_bootstrap,
        classes=tuple(str(c) for c in classes),
        malignant=tuple(str(m) for m in malignant),
        threshold=t,
        threshold_rule=rule,
        n_groups=None if g is None else len(np.unique(g)),
        group_unit=group_unit,
    )
