"""Bootstrap confidence intervals (binomial ones live in :mod:`skinml.stats.proportion`).

Every reported metric on real data carries an interval (PRODUCT.md). The
bootstrap resamples cases (optionally whole groups such as patients, so that
correlated images do not shrink the interval) with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: ``BootstrapCI.method`` of the two intervals :func:`bootstrap_ci` computes
PERCENTILE = "percentile bootstrap"
BIAS_CORRECTED = "bias-corrected basic bootstrap"


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with its bootstrap interval and how it was computed.

    ``plugin`` is the metric on the data as given when ``value`` is bias-corrected.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    n_bootstrap: int
    seed: int
    level: float = 0.95
    method: str = PERCENTILE
    plugin: float | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
        }
        if self.method != PERCENTILE:
            out.update(method=self.method, plugin=self.plugin)
        return out

    def __str__(self) -> str:
        return f"{self.value:.3f}, 95% CI {self.ci_low:.3f}-{self.ci_high:.3f}"


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: Sequence | np.ndarray,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    groups: Sequence | np.ndarray | None = None,
    bias_corrected: bool = False,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> BootstrapCI:
    """Bootstrap interval of ``metric(*arrays)``: percentile, or bias-corrected.

    The percentile interval assumes the metric is about unbiased. For a metric that
    is not, such as the binned ECE (sampling noise in each bin only adds to the gaps,
    so a well-calibrated model's ECE is overestimated, and more so in resamples with
    duplicated cases), the percentile interval can lie entirely above the estimate.
    ``bias_corrected=True`` then reports the bootstrap's bias-corrected estimate
    ``2 * plugin - median(resamples)`` with the basic interval
    ``[2 * plugin - q_high, 2 * plugin - q_low]``, clipped to ``bounds``; the estimate
    always lies inside it (Efron & Tibshirani 1993, ch. 10 and 13; Kumar et al.,
    "Verified uncertainty calibration", NeurIPS 2019, for calibration error).

    Args:
        metric: called with the resampled arrays, returns a float. Resamples
            where it is undefined (e.g. one class only for AUC) are skipped,
            and must not exceed half of all resamples.
        arrays: aligned arrays (first axis = cases).
        groups: optional cluster labels; whole clusters are resampled.
        bias_corrected: report the bias-corrected estimate and basic interval.
        bounds: the metric's range (e.g. ``(0, 1)`` for ECE), for the bias-corrected values.

    Returns:
        The estimate and the interval; with ``bias_corrected``, ``plugin`` holds the
        metric on the full data.
    """
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ValueError("bootstrap_ci: all arrays must have the same length")
    if n == 0:
        raise ValueError("bootstrap_ci: no cases to bootstrap")
    value = float(metric(*arrs))
    rng = np.random.default_rng(seed)
    if groups is not None:
        g = np.asarray(groups)
        uniq, inverse = np.unique(g, return_inverse=True)
        members = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    stats = []
    for _ in range(n_bootstrap):
        if groups is None:
            idx = rng.integers(0, n, n)
        else:
            picks = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[k] for k in picks])
        try:
            s = float(metric(*(a[idx] for a in arrs)))
        except ValueError:
            continue
        if np.isfinite(s):
            stats.append(s)
    method = BIAS_CORRECTED if bias_corrected else PERCENTILE
    plugin = value if bias_corrected else None
    if len(stats) < n_bootstrap / 2:
        nan = float("nan")
        return BootstrapCI(value, nan, nan, n, n_bootstrap, seed, level, method, plugin)
    alpha = (1.0 - level) / 2.0
    lo, mid, hi = np.quantile(stats, [alpha, 0.5, 1.0 - alpha])
    if bias_corrected:
        lo, value, hi = np.clip([2 * value - hi, 2 * value - mid, 2 * value - lo], *bounds)
    return BootstrapCI(
        float(value), float(lo), float(hi), n, n_bootstrap, seed, level, method, plugin
    )
