"""Intervals for proportions (sensitivity, specificity, accuracy, PPV, NPV): Wilson score.

A percentile bootstrap of a proportion collapses at the edges: a sensitivity of
8/8 resamples to 8/8 every time and reads "1.000 [1.000, 1.000]", as if eight
cases had proven perfection. The Wilson score interval (statsmodels
``proportion_confint(method="wilson")``) uses the real numerator and
denominator and gives 0.676-1.000 for 8/8. It is what skinml reports for
every proportion, always shown with its counts.

Wilson assumes independent cases. When several images come from one patient,
:func:`widen_for_clusters` takes the union with the patient-cluster bootstrap
interval, so that correlated images never make the interval narrower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skinml.stats.bootstrap import BootstrapCI

WILSON = "wilson"
WILSON_CLUSTERED = "wilson+cluster_bootstrap"


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (well-behaved near 0 and 1 and for small n)."""
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return (float("nan"), float("nan"))
    lo, hi = proportion_confint(successes, n, alpha=1.0 - level, method="wilson")
    return float(lo), float(hi)


@dataclass(frozen=True)
class ProportionCI:
    """``successes / n`` with its interval; ``n`` is the real denominator.

    For a sensitivity ``n`` is the number of diseased cases, not the split size.
    ``method`` is ``"wilson"``, or ``"wilson+cluster_bootstrap"`` when the interval
    was widened to the patient-cluster bootstrap (then ``n_bootstrap``/``seed`` say how).
    """

    successes: int
    n: int
    ci_low: float
    ci_high: float
    level: float = 0.95
    method: str = WILSON
    n_bootstrap: int = 0
    seed: int | None = None

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else float("nan")

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "successes": self.successes,
            "n": self.n,
            "interval": self.method,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
        }

    def __str__(self) -> str:
        return format_proportion(self.successes, self.n, self.ci_low, self.ci_high)


def proportion_ci(successes: int, n: int, level: float = 0.95) -> ProportionCI:
    """The Wilson interval of ``successes / n`` (NaN bounds when ``n == 0``)."""
    lo, hi = wilson_ci(int(successes), int(n), level)
    return ProportionCI(int(successes), int(n), lo, hi, level)


def widen_for_clusters(ci: ProportionCI, cluster: BootstrapCI) -> ProportionCI:
    """The union of the Wilson interval and a patient-cluster bootstrap interval.

    Used when cases are grouped (several images per patient): the bootstrap then
    carries the within-patient correlation that Wilson ignores, while Wilson keeps
    an 8/8 from collapsing to a point. Undefined bootstrap bounds are ignored.
    """
    lo = min(ci.ci_low, cluster.ci_low) if math.isfinite(cluster.ci_low) else ci.ci_low
    hi = max(ci.ci_high, cluster.ci_high) if math.isfinite(cluster.ci_high) else ci.ci_high
    if (lo, hi) == (ci.ci_low, ci.ci_high):
        return ci
    return ProportionCI(
        ci.successes,
        ci.n,
        lo,
        hi,
        ci.level,
        WILSON_CLUSTERED,
        cluster.n_bootstrap,
        cluster.seed,
    )


def format_proportion(
    successes: int, n: int, ci_low: float | None, ci_high: float | None, digits: int = 3
) -> str:
    """``"8/8 (1.000), 95% CI 0.676-1.000"``: counts first, then the interval."""
    if not n:
        return f"{successes}/{n} (not defined)"
    text = f"{successes}/{n} ({successes / n:.{digits}f})"
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return text + ", no interval"
    return text + f", 95% CI {ci_low:.{digits}f}-{ci_high:.{digits}f}"
