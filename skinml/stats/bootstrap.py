"""Bootstrap confidence intervals (binomial ones live in :mod:`skinml.stats.proportion`).

Every reported metric on real data carries an interval (PRODUCT.md). The
bootstrap resamples cases (optionally whole groups such as patients, so that
correlated images do not shrink the interval) with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with its percentile interval and how it was computed."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    n_bootstrap: int
    seed: int
    level: float = 0.95

    def as_dict(self) -> dict[str, float | int]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
        }

    def __str__(self) -> str:
        return f"{self.value:.3f}, 95% CI {self.ci_low:.3f}-{self.ci_high:.3f}"


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: Sequence | np.ndarray,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    groups: Sequence | np.ndarray | None = None,
) -> BootstrapCI:
    """Percentile bootstrap interval of ``metric(*arrays)``.

    Args:
        metric: called with the resampled arrays, returns a float. Resamples
            where it is undefined (e.g. one class only for AUC) are skipped,
            and must not exceed half of all resamples.
        arrays: aligned arrays (first axis = cases).
        groups: optional cluster labels; whole clusters are resampled.

    Returns:
        The estimate on the full data and the interval.
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
    if len(stats) < n_bootstrap / 2:
        nan = float("nan")
        return BootstrapCI(value, nan, nan, n, n_bootstrap, seed, level)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return BootstrapCI(value, float(lo), float(hi), n, n_bootstrap, seed, level)
