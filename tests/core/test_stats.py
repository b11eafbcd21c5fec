"""Bootstrap intervals and agreement statistics against known values."""

from __future__ import annotations

import numpy as np
import pytest

from skinml.stats import (
    BIAS_CORRECTED,
    PERCENTILE,
    bootstrap_ci,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    wilson_ci,
)


def test_bootstrap_interval_covers_the_mean(rng):
    x = rng.normal(3.0, 1.0, 400)
    ci = bootstrap_ci(np.mean, x, n_bootstrap=500, seed=1)
    assert ci.ci_low < 3.0 < ci.ci_high
    assert ci.ci_high - ci.ci_low == pytest.approx(2 * 1.96 / 20, rel=0.25)
    assert bootstrap_ci(np.mean, x, n_bootstrap=500, seed=1) == ci  # seeded


def test_bias_corrected_bootstrap_removes_an_upward_bias_and_keeps_the_estimate_inside(rng):
    # The mean absolute column mean of 50 zero-mean columns is biased upwards as a binned ECE
    # is (noise only adds to each |gap|): a resample's is larger still, so the percentile
    # interval lies above the estimate.
    x = rng.normal(0.0, 1.0, (200, 50))

    def mean_abs_mean(a: np.ndarray) -> float:
        return float(np.abs(a.mean(axis=0)).mean())

    plain = bootstrap_ci(mean_abs_mean, x, n_bootstrap=400, seed=0)
    assert plain.ci_low > plain.value  # the defect: the interval excludes its own estimate
    fixed = bootstrap_ci(mean_abs_mean, x, n_bootstrap=400, seed=0, bias_corrected=True)
    assert fixed.method == BIAS_CORRECTED and plain.method == PERCENTILE
    assert fixed.plugin == pytest.approx(plain.value)
    assert fixed.ci_low <= fixed.value <= fixed.ci_high
    assert fixed.value < plain.value  # moved towards the truth, 0
    assert fixed.as_dict()["plugin"] == fixed.plugin and "plugin" not in plain.as_dict()
    clipped = bootstrap_ci(
        mean_abs_mean, x, n_bootstrap=400, seed=0, bias_corrected=True, bounds=(0.1, 1.0)
    )
    assert clipped.ci_low >= 0.1 and clipped.value >= 0.1


def test_grouped_bootstrap_is_wider_for_clustered_data(rng):
    groups = np.repeat(np.arange(40), 10)
    x = np.repeat(rng.normal(0, 1, 40), 10)  # perfectly correlated within a group
    plain = bootstrap_ci(np.mean, x, n_bootstrap=400, seed=0)
    grouped = bootstrap_ci(np.mean, x, n_bootstrap=400, seed=0, groups=groups)
    assert (grouped.ci_high - grouped.ci_low) > 2 * (plain.ci_high - plain.ci_low)


def test_cohen_kappa_known_value():
    a = ["mel"] * 20 + ["nv"] * 30
    b = ["mel"] * 15 + ["nv"] * 5 + ["mel"] * 5 + ["nv"] * 25
    # po = 0.8, pe = 0.4*0.4 + 0.6*0.6 = 0.52 -> kappa = 0.28/0.48
    k = cohen_kappa(a, b, n_bootstrap=200)
    assert k.value == pytest.approx(0.28 / 0.48)
    assert k.ci_low < k.value < k.ci_high


def test_cohen_kappa_skips_missing_ratings():
    k = cohen_kappa(["a", "b", None, "a"], ["a", "b", "a", float("nan")], n_bootstrap=50)
    assert k.n == 2 and k.value == pytest.approx(1.0)


def test_fleiss_and_krippendorff_agree_on_perfect_and_random(rng):
    perfect = np.array([["a", "a", "a"], ["b", "b", "b"], ["c", "c", "c"], ["a", "a", "a"]])
    assert fleiss_kappa(perfect) == pytest.approx(1.0)
    assert krippendorff_alpha(perfect.T) == pytest.approx(1.0)
    noise = rng.choice(["a", "b", "c"], size=(300, 4))
    assert abs(fleiss_kappa(noise)) < 0.08
    assert abs(krippendorff_alpha(noise.T)) < 0.08


def test_krippendorff_tolerates_missing():
    ratings = np.array(
        [["a", "b", None, "a"], ["a", "b", "b", None], ["a", None, "b", "a"]], dtype=object
    )
    assert krippendorff_alpha(ratings) == pytest.approx(1.0)


def test_wilson_interval():
    lo, hi = wilson_ci(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2


def test_eight_of_eight_gets_a_wilson_interval_not_a_point():
    from skinml.stats import proportion_ci

    ci = proportion_ci(8, 8)
    # a bootstrap of 8/8 resamples to 8/8 every time: "1.000 [1.000, 1.000]"
    assert bootstrap_ci(np.mean, np.ones(8), n_bootstrap=200).ci_low == 1.0
    assert ci.value == 1.0 and ci.ci_high == 1.0
    assert ci.ci_low == pytest.approx(0.6756, abs=1e-4)
    assert str(ci) == "8/8 (1.000), 95% CI 0.676-1.000"
    assert ci.as_dict()["interval"] == "wilson" and ci.as_dict()["successes"] == 8


def test_proportion_without_cases_is_not_defined():
    from skinml.stats import format_proportion, proportion_ci

    ci = proportion_ci(0, 0)
    assert np.isnan(ci.value) and np.isnan(ci.ci_low)
    assert format_proportion(0, 0, None, None) == "0/0 (not defined)"


def test_cluster_bootstrap_only_widens_the_wilson_interval():
    from skinml.stats import BootstrapCI, proportion_ci, widen_for_clusters

    wilson = proportion_ci(30, 40)
    narrow = BootstrapCI(0.75, 0.70, 0.80, 40, 100, 0)
    assert widen_for_clusters(wilson, narrow) == wilson  # bootstrap inside Wilson
    wide = BootstrapCI(0.75, 0.40, 0.95, 40, 100, 0)
    both = widen_for_clusters(wilson, wide)
    assert (both.ci_low, both.ci_high) == (0.40, 0.95)
    assert both.method == "wilson+cluster_bootstrap" and both.successes == 30
