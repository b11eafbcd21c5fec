"""Bootstrap intervals and agreement statistics against known values."""

from __future__ import annotations

import numpy as np
import pytest

from skinml.stats import bootstrap_ci, cohen_kappa, fleiss_kappa, krippendorff_alpha, wilson_ci


def test_bootstrap_interval_covers_the_mean(rng):
    x = rng.normal(3.0, 1.0, 400)
    ci = bootstrap_ci(np.mean, x, n_bootstrap=500, seed=1)
    assert ci.ci_low < 3.0 < ci.ci_high
    assert ci.ci_high - ci.ci_low == pytest.approx(2 * 1.96 / 20, rel=0.25)
    assert bootstrap_ci(np.mean, x, n_bootstrap=500, seed=1) == ci  # seeded


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
