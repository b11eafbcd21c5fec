"""Funnel limits, overdispersion and classification (Spiegelhalter 2005)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from skinml.qc.funnel import Overdispersion, estimate_overdispersion, funnel_limits, funnel_table


def test_limits_narrow_with_volume_and_nest():
    lim = funnel_limits([20, 200, 2000, 20000], 0.1)
    width95 = lim["upper_95"] - lim["lower_95"]
    assert np.all(np.diff(width95) < 0)
    assert np.all(lim["lower_99.8"] <= lim["lower_95"]) and np.all(
        lim["upper_99.8"] >= lim["upper_95"]
    )
    # Large n: exact limits approach the normal approximation.
    se = np.sqrt(0.1 * 0.9 / 20000)
    assert lim["upper_95"].iloc[-1] == pytest.approx(0.1 + 1.96 * se, abs=2e-4)


def test_exact_limit_brackets_binomial_quantile():
    n, p = 150, 0.2
    lim = funnel_limits([n], p)
    q = stats.binom.ppf(0.975, n, p)
    assert (q - 1) / n <= lim["upper_95"].iloc[0] <= q / n


def test_poisson_ratio_limits_around_one():
    lim = funnel_limits([5, 50, 500], 1.0, kind="poisson")
    assert np.all(lim["lower_95"] < 1) and np.all(lim["upper_95"] > 1)
    assert lim["upper_95"].iloc[2] == pytest.approx(1 + 1.96 / np.sqrt(500), abs=0.01)


def test_in_control_units_are_rarely_flagged(rng):
    n = rng.integers(50, 2000, 3000)
    events = rng.binomial(n, 0.12)
    f = funnel_table(
        np.arange(3000).astype(str), events, n, indicator="x", target=0.12, overdispersion="none"
    )
    flagged = (f.table["status"] != "within").mean()
    alarms = (f.table["status"] == "alarm").mean()
    assert 0.02 < flagged < 0.065
    assert alarms < 0.006


def test_small_unit_at_the_maximum_is_not_extreme():
    f = funnel_table(
        ["a", "b"], [2, 700], [2, 1000], indicator="x", target=0.7, overdispersion="none"
    )
    assert f.table.set_index("unit").loc["a", "status"] == "within"


def test_overdispersion_detected_and_widens_limits(rng):
    n = rng.integers(200, 3000, 40)
    p = np.clip(0.1 + rng.normal(0, 0.03, 40), 0.01, 0.5)
    events = rng.binomial(n, p)
    od = estimate_overdispersion(events / n, n, events.sum() / n.sum(), "binomial", "additive")
    assert od.applied and od.phi > 2 and od.tau2 > 0
    plain = funnel_limits([1000], 0.1)
    wide = funnel_limits([1000], 0.1, overdispersion=od)
    assert wide["upper_95"].iloc[0] > plain["upper_95"].iloc[0]


def test_dersimonian_laird_matches_formula(rng):
    n = rng.integers(100, 1000, 30).astype(float)
    y = np.clip(0.2 + rng.normal(0, 0.05, 30), 0.01, 0.9)
    od = estimate_overdispersion(y, n, 0.2, "binomial", "additive", winsor=0.0)
    se = np.sqrt(0.2 * 0.8 / n)
    z2 = ((y - 0.2) / se) ** 2
    w = 1 / se**2
    tau2 = (z2.sum() - 29) / (w.sum() - (w**2).sum() / w.sum())
    assert od.phi == pytest.approx(z2.mean())
    assert od.tau2 == pytest.approx(max(tau2, 0.0))


def test_multiplicative_limits_formula():
    od = Overdispersion("multiplicative", phi=4.0, applied=True, n_units=20, p_value=0.001)
    lim = funnel_limits([400], 0.5, overdispersion=od)
    assert lim["upper_95"].iloc[0] == pytest.approx(
        0.5 + 1.959964 * 2 * np.sqrt(0.25 / 400), rel=1e-5
    )


def test_few_units_never_get_a_correction():
    od = estimate_overdispersion([0.1, 0.5, 0.9, 0.3], [1000] * 4, 0.45, "binomial", "additive")
    assert od.phi > 10 and not od.applied


def test_table_sorted_by_name_and_flags_direction():
    f = funnel_table(
        ["b", "c", "a"], [50, 100, 300], [1000, 1000, 1000], indicator="x", overdispersion="none"
    )
    t = f.table
    assert list(t["unit"]) == ["a", "b", "c"]
    assert t.loc[0, "direction"] == "high" and t.loc[0, "status"] == "alarm"
    assert t.loc[1, "direction"] == "low"
    assert f.target == pytest.approx(450 / 3000)


def test_zero_volume_is_reported_not_dropped():
    f = funnel_table(["a", "b", "c"], [0, 10, 12], [0, 100, 100], indicator="x")
    assert f.table.set_index("unit").loc["a", "status"] == "no cases"
    assert len(f.table) == 3


def test_pooled_target_of_zero_gives_zero_z_not_nan():
    """A diagnosis nobody makes (or a malignant rate of 0) has no variance: z is 0, not NaN."""
    f = funnel_table(["a", "b", "c"], [0, 0, 0], [40, 60, 80], indicator="x")
    assert f.target == 0 and (f.table["z"] == 0).all() and (f.table["z_adjusted"] == 0).all()
    assert (f.table["status"] == "within").all()


def test_few_units_are_described_as_not_estimable_and_flags_carry_it():
    from skinml.qc.flags import funnel_flags

    f = funnel_table(["a", "b", "c", "d"], [10, 12, 11, 60], [100, 100, 100, 100], indicator="x")
    assert not f.overdispersion.estimable
    assert "not estimable with 4 units" in f.overdispersion.describe()
    flags = funnel_flags(f, analysis="test")
    assert "d" in set(flags["unit"])
    caveat = "possibly inflated (overdispersion not estimable with N < 10 units; here N = 4)"
    assert (flags["caveat"] == caveat).all() and flags["reason"].str.endswith(caveat).all()


def test_p_values_are_never_printed_as_zero():
    from skinml.qc.funnel import Overdispersion
    from skinml.reporting.text import format_p, format_p_cell

    assert format_p(0.0) == "p < 0.001" and format_p(1e-300) == "p < 0.001"
    assert format_p(0.0123) == "p = 0.012" and format_p(0.5) == "p = 0.50"
    assert format_p_cell(0.0) == "< 0.001" and format_p_cell(float("nan")) == ""
    od = Overdispersion("additive", phi=40.0, tau2=1e-8, n_units=22, p_value=0.0, applied=True)
    assert "p < 0.001" in od.describe() and "p = 0" not in od.describe()
    assert "τ = 10 per 100,000" in od.describe(scale=1e5)  # in the units the plot shows


def test_display_table_scales_rates_and_keeps_counts_whole():
    f = funnel_table(["a", "b"], [20, 30], [1e5, 2e5], indicator="r", kind="poisson", scale=1e5)
    t = f.display_table()
    assert list(t["per"]) == [1e5, 1e5] and t["events"].dtype == "Int64"
    assert t["value"].tolist() == pytest.approx([20.0, 15.0])
    assert t["target"].iloc[0] == pytest.approx(50 / 3)
