"""Funnel plots for comparing institutions (Spiegelhalter 2005; Spiegelhalter et al. 2012).

A funnel plot shows each hospital's indicator against its volume with control
limits around a target that narrow as volume grows. It answers "is this hospital
different by more than chance?" without a league table: limits, not ranks, are
what matter, and small hospitals are not punished for noise.

The core functions are pure (numpy/scipy in, numbers out):

* :func:`funnel_limits` – exact binomial / Poisson limits (with Spiegelhalter's
  interpolation between integer counts) or, when overdispersion is present,
  normal limits widened multiplicatively (φ) or additively (τ²).
* :func:`estimate_overdispersion` – φ from winsorised z-scores and the
  DerSimonian–Laird τ², with a χ² test of whether any correction is needed.
* :func:`funnel_table` – every unit's indicator, own interval, z-scores, the
  limits at its volume and its status (``within``/``alert``/``alarm``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from skinml.reporting.text import format_p

Kind = Literal["binomial", "poisson"]
OverdispersionMethod = Literal["none", "multiplicative", "additive"]

#: The two conventional funnel levels: ≈2 and ≈3 standard deviations.
DEFAULT_LEVELS: tuple[float, ...] = (0.95, 0.998)
#: Fewest units with which overdispersion is estimated (Spiegelhalter 2012 advises against fewer).
MIN_UNITS_OVERDISPERSION = 10


@dataclass(frozen=True)
class Overdispersion:
    """How much more the units vary than chance alone allows, and the chosen correction.

    Attributes:
        method: ``none``, ``multiplicative`` (limits × √φ) or ``additive`` (variance + τ²).
        phi: winsorised mean squared z-score (1 means no overdispersion).
        tau2: DerSimonian–Laird between-unit variance on the indicator scale.
        n_units: units used for the estimate.
        p_value: χ² test of I·φ against χ²(I−1); small means real overdispersion.
        applied: whether limits were widened (only when ``p_value`` < ``alpha``).
        winsor: fraction winsorised at each tail of the z-scores.
        min_units: fewest units with which overdispersion is estimated at all.
    """

    method: str = "none"
    phi: float = 1.0
    tau2: float = 0.0
    n_units: int = 0
    p_value: float = 1.0
    applied: bool = False
    winsor: float = 0.1
    min_units: int = MIN_UNITS_OVERDISPERSION

    @property
    def estimable(self) -> bool:
        """Whether there are enough units to estimate overdispersion (else limits are exact)."""
        return self.n_units >= self.min_units

    def caveat(self) -> str:
        """What a flag from this funnel must carry when overdispersion could not be estimated.

        With few units, exact limits assume hospitals differ by chance alone, so ordinary
        between-hospital variation is flagged too: the flag may be a false alarm.
        """
        if self.estimable:
            return ""
        return (
            "possibly inflated (overdispersion not estimable with N < "
            f"{self.min_units} units; here N = {self.n_units})"
        )

    def describe(self, scale: float = 1.0) -> str:
        """The limits in words; τ is given in display units (× ``scale``, e.g. per 100,000)."""
        if not self.estimable:
            return (
                f"exact limits: overdispersion not estimable with {self.n_units} units (fewer "
                f"than {self.min_units}), so limits assume chance alone and flags may be inflated"
            )
        if not self.applied:
            return (
                f"exact limits, no overdispersion correction (φ = {self.phi:.2f}, "
                f"χ² test {format_p(self.p_value)}, {self.n_units} units; a correction needs "
                "a significant test)"
            )
        if self.method == "multiplicative":
            return f"multiplicative overdispersion φ = {self.phi:.2f} ({format_p(self.p_value)})"
        per = "" if scale == 1 else f" per {scale:,.0f}"
        return (
            f"additive random-effects overdispersion τ = {np.sqrt(self.tau2) * scale:.4g}{per} "
            f"(DerSimonian–Laird; φ = {self.phi:.2f}, {format_p(self.p_value)})"
        )


def standard_error(volume: np.ndarray, target: float, kind: Kind) -> np.ndarray:
    """Null standard error of the indicator at each volume (proportion or rate per unit)."""
    v = np.asarray(volume, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "binomial":
            return np.sqrt(target * (1.0 - target) / v)
        if kind == "poisson":
            return np.sqrt(target / v)
    raise ValueError(f"kind must be 'binomial' or 'poisson', not {kind!r}")


def _exact_limit(volume: np.ndarray, target: float, p: float, kind: Kind) -> np.ndarray:
    """Spiegelhalter's interpolated exact limit at probability ``p`` for each volume."""
    v = np.asarray(volume, dtype=float)
    if kind == "binomial":
        n = np.round(v)
        dist = stats.binom(n, target)
    else:
        dist = stats.poisson(target * v)
    r = dist.ppf(p)
    f_r = dist.cdf(r)
    f_below = dist.cdf(r - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(f_r > f_below, (f_r - p) / (f_r - f_below), 0.0)
        limit = (r - alpha) / v
    return np.clip(limit, 0.0, 1.0) if kind == "binomial" else np.maximum(limit, 0.0)


def funnel_limits(
    volume: Sequence[float] | np.ndarray,
    target: float,
    kind: Kind = "binomial",
    levels: Sequence[float] = DEFAULT_LEVELS,
    overdispersion: Overdispersion | None = None,
) -> pd.DataFrame:
    """Control limits of a funnel plot at each volume.

    Without an applied overdispersion correction the limits are exact
    (binomial for proportions, Poisson for rates per unit of exposure, or for
    observed/expected ratios with ``volume`` = expected count and ``target`` = 1),
    interpolated between integer counts as in Spiegelhalter (2005, appendix).
    With a correction they are normal limits around the target with the variance
    inflated by φ or increased by τ².

    Args:
        volume: cases (binomial) or exposure such as person-years / expected counts (Poisson).
        target: the proportion or rate per unit of volume that hospitals are compared with.
        kind: ``binomial`` or ``poisson``.
        levels: two-sided coverage of each pair of limits.
        overdispersion: an :class:`Overdispersion` from :func:`estimate_overdispersion`.

    Returns:
        One row per volume: ``volume`` and ``lower_<level>``/``upper_<level>`` columns
        (level written as a percentage, e.g. ``upper_99.8``).
    """
    v = np.asarray(volume, dtype=float)
    if kind not in ("binomial", "poisson"):
        raise ValueError(f"kind must be 'binomial' or 'poisson', not {kind!r}")
    if not np.isfinite(target) or target < 0 or (kind == "binomial" and target > 1):
        raise ValueError(f"target must be a valid {kind} parameter, got {target!r}")
    out = {"volume": v}
    od = overdispersion if overdispersion is not None and overdispersion.applied else None
    se = standard_error(v, target, kind)
    for level in levels:
        tail = (1.0 - level) / 2.0
        name = _level_name(level)
        if od is None:
            lo = _exact_limit(v, target, tail, kind)
            hi = _exact_limit(v, target, 1.0 - tail, kind)
        else:
            z = stats.norm.ppf(1.0 - tail)
            width = z * (
                se * np.sqrt(od.phi) if od.method == "multiplicative" else np.sqrt(se**2 + od.tau2)
            )
            lo, hi = target - width, target + width
            lo = np.maximum(lo, 0.0)
            if kind == "binomial":
                hi = np.minimum(hi, 1.0)
        out[f"lower_{name}"] = lo
        out[f"upper_{name}"] = hi
    return pd.DataFrame(out)


def estimate_overdispersion(
    indicator: Sequence[float] | np.ndarray,
    volume: Sequence[float] | np.ndarray,
    target: float,
    kind: Kind = "binomial",
    method: OverdispersionMethod = "additive",
    *,
    winsor: float = 0.1,
    alpha: float = 0.05,
    min_units: int = MIN_UNITS_OVERDISPERSION,
) -> Overdispersion:
    """Estimate overdispersion from the units themselves (Spiegelhalter 2005, 2012).

    z-scores are winsorised (the most extreme ``winsor`` fraction at each end set
    to the winsor quantile) so that the few truly divergent units do not inflate
    the estimate and hide themselves. φ is the mean squared winsorised z; it is
    tested with I·φ ~ χ²(I−1), and a correction is applied only if significant.
    τ² is the DerSimonian–Laird moment estimate from the same winsorised z-scores.
    With fewer than ``min_units`` units the estimate is too unstable to use: φ is
    reported but never applied (so a region of four sites gets exact limits).
    """
    y = np.asarray(indicator, dtype=float)
    v = np.asarray(volume, dtype=float)
    keep = np.isfinite(y) & (v > 0)
    y, v = y[keep], v[keep]
    n_units = len(y)
    if n_units < 3 or method == "none" or target <= 0 or (kind == "binomial" and target >= 1):
        return Overdispersion(method=method, n_units=n_units, winsor=winsor, min_units=min_units)
    se = standard_error(v, target, kind)
    z = (y - target) / se
    lo, hi = np.quantile(z, [winsor, 1.0 - winsor])
    zw = np.clip(z, lo, hi)
    phi = float(np.mean(zw**2))
    p_value = float(stats.chi2.sf(n_units * phi, n_units - 1))
    w = 1.0 / se**2
    denom = w.sum() - (w**2).sum() / w.sum()
    tau2 = float(max(0.0, (n_units * phi - (n_units - 1)) / denom)) if denom > 0 else 0.0
    applied = bool(p_value < alpha and phi > 1.0 and n_units >= min_units)
    return Overdispersion(method, phi, tau2, n_units, p_value, applied, winsor, min_units)


@dataclass(frozen=True)
class FunnelResult:
    """One funnel: the per-unit table plus how its limits were computed."""

    indicator: str
    kind: str
    target: float
    overdispersion: Overdispersion
    table: pd.DataFrame
    levels: tuple[float, ...] = DEFAULT_LEVELS
    volume_label: str = "cases"
    scale: float = 1.0
    notes: list[str] = field(default_factory=list)
    diagnosis: str | None = None

    def display_table(self) -> pd.DataFrame:
        """The table as written to ``funnels.csv`` and shown in reports.

        Values, intervals, target and limits are in display units (× ``scale``, recorded in
        the ``per`` column: a rate per 100,000 is a number per 100,000), events are integers,
        and so is the volume when it counts cases.
        """
        t = self.table.copy()
        scaled = ["value", "ci_low", "ci_high", "target"]
        scaled += [c for c in t.columns if c.startswith(("lower_", "upper_"))]
        t[scaled] = t[scaled] * self.scale
        t["events"] = as_counts(t["events"])
        if self.kind == "binomial":
            t["volume"] = as_counts(t["volume"])
        t.insert(t.columns.get_loc("value"), "per", self.scale)
        t.insert(1, "diagnosis", self.diagnosis or "")
        return t


def as_counts(values: pd.Series) -> pd.Series:
    """Whole numbers as integers (``1994``, not ``1994.0``); anything fractional unchanged.

    Counts should read as counts, but rounding a weighted or fractional count would
    silently change the data, so that is left as it is.
    """
    v = pd.to_numeric(values)
    finite = v[np.isfinite(v)]
    if len(finite) and not np.all(finite == np.round(finite)):
        return values
    return v.round().astype("Int64")


def funnel_table(
    units: Sequence | np.ndarray,
    events: Sequence[float] | np.ndarray,
    volume: Sequence[float] | np.ndarray,
    *,
    indicator: str,
    kind: Kind = "binomial",
    target: float | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    overdispersion: OverdispersionMethod = "additive",
    volume_label: str = "cases",
    scale: float = 1.0,
) -> FunnelResult:
    """Classify every unit against funnel limits at its own volume.

    Args:
        units: hospital (or device) names.
        events: event counts (cases with the indicator; or observed events for rates).
        volume: denominators (cases; person-years; or expected counts with ``target=1``).
        indicator: a human-readable name written into every row.
        target: the comparison value; the pooled value Σevents/Σvolume when None.
        overdispersion: correction method; applied only when the χ² test says so.
        scale: display multiplier (e.g. 100000 for rates per 100,000) recorded for plots.

    A unit is ``alert``/``alarm`` when its one-sided tail probability under the target
    is below (1 − level)/2: exact binomial/Poisson tails, or normal tails of the
    overdispersion-adjusted z when a correction applies.

    Returns:
        A :class:`FunnelResult`; its table is sorted by unit name (never by performance)
        and has columns ``unit, volume, events, value, ci_low, ci_high, target, z,
        z_adjusted, lower_*, upper_*, status, direction``.
    """
    u = np.asarray(units, dtype=object)
    e = np.asarray(events, dtype=float)
    v = np.asarray(volume, dtype=float)
    if not (len(u) == len(e) == len(v)):
        raise ValueError("funnel_table: units, events and volume must have the same length")
    if np.any(v < 0) or np.any(e < 0):
        raise ValueError("funnel_table: events and volume must be non-negative")
    used = v > 0
    if target is None:
        target = float(e[used].sum() / v[used].sum()) if used.any() else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(used, e / v, np.nan)
    od = estimate_overdispersion(value[used], v[used], target, kind, overdispersion)
    limits = funnel_limits(np.where(used, v, 1.0), target, kind, levels, od)
    se = standard_error(np.where(used, v, np.nan), target, kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (value - target) / se
        # A pooled target of 0 or 1 has no variance; every unit then sits on it (z = 0, not NaN).
        z = np.where(used & (se == 0) & (value == target), 0.0, z)
        if od.applied and od.method == "multiplicative":
            z_adj = z / np.sqrt(od.phi)
        elif od.applied:
            z_adj = (value - target) / np.sqrt(se**2 + od.tau2)
        else:
            z_adj = z
    ci_low, ci_high = _own_interval(e, v, kind)
    table = pd.DataFrame(
        {
            "indicator": indicator,
            "unit": u,
            "volume": v,
            "events": e,
            "value": value,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "target": target,
            "z": z,
            "z_adjusted": z_adj,
        }
    )
    for col in limits.columns[1:]:
        table[col] = np.where(used, limits[col].to_numpy(), np.nan)
    status = np.full(len(u), "within", dtype=object)
    direction = np.full(len(u), "", dtype=object)
    p_high, p_low = _tail_probabilities(e, v, target, kind, z_adj, exact=not od.applied)
    for level in sorted(levels):
        label = "alarm" if level >= 0.99 else "alert"
        tail = (1.0 - level) / 2.0
        high = used & (p_high < tail)
        low = used & (p_low < tail)
        status[high | low] = label
        direction[high] = "high"
        direction[low] = "low"
    status[~used] = "no cases"
    table["status"] = status
    table["direction"] = direction
    table = table.sort_values("unit", key=lambda s: s.astype(str)).reset_index(drop=True)
    return FunnelResult(
        indicator, kind, float(target), od, table, tuple(levels), volume_label, scale
    )


def _tail_probabilities(
    events: np.ndarray,
    volume: np.ndarray,
    target: float,
    kind: Kind,
    z_adj: np.ndarray,
    *,
    exact: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided P(X ≥ observed) and P(X ≤ observed) under the target.

    Exact binomial/Poisson tails when no overdispersion correction applies (so that,
    for example, 2 of 2 against a target of 70% is not called extreme, which comparing
    with the interpolated limit would do); normal tails of the adjusted z otherwise.
    """
    if not exact:
        z = np.nan_to_num(z_adj, nan=0.0)
        return stats.norm.sf(z), stats.norm.cdf(z)
    k = np.round(events)
    with np.errstate(invalid="ignore"):
        if kind == "binomial":
            n = np.round(volume)
            return stats.binom.sf(k - 1, n, target), stats.binom.cdf(k, n, target)
        mu = target * volume
        return stats.poisson.sf(k - 1, mu), stats.poisson.cdf(k, mu)


def _own_interval(
    events: np.ndarray, volume: np.ndarray, kind: Kind
) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's own 95% interval: Wilson for proportions, exact (Garwood) for Poisson rates."""
    lo = np.full(len(events), np.nan)
    hi = np.full(len(events), np.nan)
    ok = volume > 0
    if kind == "binomial":
        from statsmodels.stats.proportion import proportion_confint

        n = np.round(volume[ok])
        lo[ok], hi[ok] = proportion_confint(events[ok], n, alpha=0.05, method="wilson")
    else:
        k = events[ok]
        lo_count = np.where(k > 0, stats.chi2.ppf(0.025, 2 * k) / 2.0, 0.0)
        hi_count = stats.chi2.ppf(0.975, 2 * (k + 1)) / 2.0
        lo[ok], hi[ok] = lo_count / volume[ok], hi_count / volume[ok]
    return lo, hi


def _level_name(level: float) -> str:
    """0.95 -> '95', 0.998 -> '99.8' (column names readable in a spreadsheet)."""
    return f"{100 * level:.10g}"
