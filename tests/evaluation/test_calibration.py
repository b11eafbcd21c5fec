"""ECE and temperature scaling on simulated predictions with known calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

from skinml.errors import ConfigError, DataError
from skinml.evaluation import (
    TemperatureScaler,
    calibration_table,
    classwise_ece,
    expected_calibration_error,
    reliability_bins,
)


def test_ece_matches_hand_computation():
    # two bins (0, .5] and (.5, 1]: bin 2 holds conf .9, .9, .6 with 2 hits -> |2/3 - .8| * 3/4
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.55, 0.45]])
    y = np.array([0, 1, 1, 0])
    # bin (.5, 1]: all four (conf .9 .9 .6 .55), hits 1 1 0 1 -> |0.75 - 0.7375| = 0.0125
    assert expected_calibration_error(y, probs, n_bins=2) == pytest.approx(0.0125)
    # class 0, 2 bins: p0 = .9 .1 .6 .55; bin1 {.1}: |0 - .1|; bin2 {.9,.6,.55}: |2 - 2.05|
    assert classwise_ece(y, probs, n_bins=2)[0] == pytest.approx((0.1 + 0.05) / 4)


def test_calibrated_generator_has_small_ece(rng, simulated_calibrated):
    y, probs = simulated_calibrated(rng, 20000)
    assert expected_calibration_error(y, probs) < 0.02
    assert max(classwise_ece(y, probs).values()) < 0.02


def test_overconfident_generator_has_large_ece(rng, simulated_overconfident):
    y, logits = simulated_overconfident(rng, 5000)
    assert expected_calibration_error(y, softmax(logits, axis=1)) > 0.15


def test_temperature_scaling_recovers_temperature_and_reduces_ece(rng, simulated_overconfident):
    y_val, z_val = simulated_overconfident(rng, 4000)
    y_test, z_test = simulated_overconfident(rng, 4000)
    scaler = TemperatureScaler().fit(z_val, y_val)
    assert scaler.temperature_ == pytest.approx(3.0, rel=0.1)
    assert scaler.ece_after_ < scaler.ece_before_ / 3
    assert scaler.nll_after_ < scaler.nll_before_
    before = expected_calibration_error(y_test, softmax(z_test, axis=1))
    after_probs = scaler.predict_proba(z_test)
    assert expected_calibration_error(y_test, after_probs) < before / 3
    np.testing.assert_allclose(after_probs.sum(axis=1), 1.0)
    # temperature never changes the predicted class
    np.testing.assert_array_equal(after_probs.argmax(axis=1), z_test.argmax(axis=1))


def test_temperature_near_one_for_calibrated_logits(rng):
    z = rng.normal(scale=2.0, size=(6000, 5))
    p = softmax(z, axis=1)
    y = np.minimum((rng.random(len(z))[:, None] > p.cumsum(axis=1)).sum(axis=1), 4)
    assert TemperatureScaler().fit(z, y).temperature_ == pytest.approx(1.0, abs=0.1)


def test_scaler_follows_estimator_contract(rng, simulated_overconfident):
    check_no_attributes_set_in_init("TemperatureScaler", TemperatureScaler())
    check_parameters_default_constructible("TemperatureScaler", TemperatureScaler())
    check_get_params_invariance("TemperatureScaler", TemperatureScaler())
    scaler = TemperatureScaler(n_bins=10)
    with pytest.raises(NotFittedError):
        scaler.predict_proba(np.zeros((2, 3)))
    y, z = simulated_overconfident(rng, 200, k=3)
    assert scaler.fit(z, y) is scaler
    assert clone(scaler).get_params() == {"bounds": (0.05, 20.0), "n_bins": 10}
    assert not hasattr(clone(scaler), "temperature_")
    cal = scaler.to_calibration()
    assert cal.temperature == scaler.temperature_ and cal.fitted_on == "validation"
    assert cal.ece_after == pytest.approx(scaler.ece_after_)


@pytest.mark.parametrize(
    ("logits", "y", "message"),
    [
        (np.zeros((4,)), [0, 1, 0, 1], "shape"),
        (np.zeros((4, 3)), [0, 1, 0], "4"),
        (np.zeros((4, 3)), [0, 1, 3, 1], "outside [0, 3)"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), [0, 1], "NaN"),
    ],
)
def test_scaler_rejects_bad_input_with_clear_error(logits, y, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace(")", r"\)")):
        TemperatureScaler().fit(logits, y)


def test_scaler_rejects_bad_bounds_and_other_column_count(rng, simulated_overconfident):
    y, z = simulated_overconfident(rng, 100, k=3)
    with pytest.raises(ConfigError, match="bounds"):
        TemperatureScaler(bounds=(2.0, 5.0)).fit(z, y)
    scaler = TemperatureScaler().fit(z, y)
    with pytest.raises(DataError, match="fitted on 3"):
        scaler.predict_proba(np.zeros((2, 4)))


def test_ece_rejects_logits_with_a_hint():
    with pytest.raises(DataError, match="softmax"):
        expected_calibration_error([0, 1], np.array([[2.0, -1.0], [0.5, 3.0]]))


def test_reliability_bins_and_calibration_table(rng, simulated_overconfident, classes):
    y, z = simulated_overconfident(rng, 1000)
    before = softmax(z, axis=1)
    after = TemperatureScaler().fit(z, y).predict_proba(z)
    bins = reliability_bins(y, before, n_bins=10)
    assert len(bins) == 10 and bins["n"].sum() == 1000
    assert (bins.dropna()["confidence"] > bins.dropna()["accuracy"]).mean() > 0.7  # over-confident
    table = calibration_table(y, before, after, classes)
    assert list(table["scope"]) == ["overall", *classes]
    assert table["n"].iloc[1:].sum() == 1000
    assert table.loc[0, "ece_after"] < table.loc[0, "ece_before"]
    assert table.loc[0, "ece_before"] == pytest.approx(expected_calibration_error(y, before))
