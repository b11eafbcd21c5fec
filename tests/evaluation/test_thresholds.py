"""The malignancy operating threshold: reaches the target on validation, never fitted on test."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

from skinml.errors import ConfigError, DataError
from skinml.evaluation import (
    MalignancyThreshold,
    evaluate,
    malignant_probability,
    sensitivity_specificity,
    threshold_for_sensitivity,
)


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
    return p, y


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99, 1.0])
def test_threshold_reaches_target_and_is_the_largest_such(rng, target):
    p, y = _scores(rng, 700)
    picker = MalignancyThreshold(target).fit(p, y)
    sens, spec = sensitivity_specificity(y, p >= picker.threshold_)
    assert sens >= target
    assert (picker.sensitivity_, picker.specificity_) == (sens, spec)
    # the next larger positive score would miss the target
    higher = np.sort(p[(y == 1) & (p > picker.threshold_)])
    if higher.size:
        assert sensitivity_specificity(y, p >= higher[0])[0] < target
    assert picker.rule_.startswith(f"sensitivity >= {target:g} on validation (n=700")


def test_threshold_with_ties_and_exact_fraction():
    p = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.1, 0.2, 0.85])
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0])
    assert threshold_for_sensitivity(p, y, 0.6) == 0.8  # 3 of 5 positives
    assert threshold_for_sensitivity(p, y, 0.8) == 0.7
    assert threshold_for_sensitivity(p, y, 1.0) == 0.6


def test_threshold_is_refused_on_test_split(rng):
    p, y = _scores(rng, 100)
    with pytest.raises(ConfigError, match="validation"):
        MalignancyThreshold().fit(p, y, split="test")


def test_evaluate_applies_validation_threshold_without_refitting(rng):
    classes = ("mel", "nv", "bkl")
    n = 600
    y_val, y_test = rng.integers(0, 3, n), rng.integers(0, 3, n)

    def probs_for(y):
        logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    val_p, test_p = probs_for(y_val), probs_for(y_test)
    picker = MalignancyThreshold(0.9).fit(
        malignant_probability(val_p, classes, ["mel"]), y_val == 0
    )
    fitted = (picker.threshold_, picker.rule_, picker.n_)
    ev = evaluate(y_test, test_p, classes, ["mel"], threshold=picker, n_bootstrap=0)
    assert (picker.threshold_, picker.rule_, picker.n_) == fitted  # not refitted on test
    assert ev.threshold == picker.threshold_ and ev.threshold_rule == picker.rule_
    sens, spec = sensitivity_specificity(y_test == 0, test_p[:, 0] >= picker.threshold_)
    assert ev.headline["malignant_sensitivity"].value == pytest.approx(sens)
    assert ev.headline["malignant_specificity"].value == pytest.approx(spec)


def test_evaluate_refuses_unfitted_picker(rng):
    p = np.full((4, 2), 0.5)
    with pytest.raises(ConfigError, match="not fitted"):
        evaluate([0, 1, 0, 1], p, ["mel", "nv"], ["mel"], threshold=MalignancyThreshold())


def test_picker_contract_and_errors(rng):
    check_no_attributes_set_in_init("MalignancyThreshold", MalignancyThreshold())
    check_parameters_default_constructible("MalignancyThreshold", MalignancyThreshold())
    picker = MalignancyThreshold(0.9)
    with pytest.raises(NotFittedError):
        picker.predict([0.5])
    p, y = _scores(rng, 200)
    assert picker.fit(p, y.astype(bool)) is picker
    np.testing.assert_array_equal(picker.predict(p), (p >= picker.threshold_).astype(int))
    assert not hasattr(clone(picker), "threshold_")
    record = picker.to_operating_threshold()
    assert record.threshold == picker.threshold_ and record.chosen_on == "validation"
    assert record.validation_sensitivity >= 0.9
    with pytest.raises(ConfigError, match="target_sensitivity"):
        MalignancyThreshold(1.5).fit(p, y)
    with pytest.raises(DataError, match="no malignant cases"):
        MalignancyThreshold().fit(p, np.zeros_like(y))
    with pytest.raises(DataError, match="0/1"):
        MalignancyThreshold().fit(p, y * 2)
    with pytest.raises(DataError, match="200 scores"):
        MalignancyThreshold().fit(p, y[:10])


def test_malignant_probability_sums_malignant_columns():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    np.testing.assert_allclose(
        malignant_probability(probs, ["mel", "bcc", "nv"], ["mel", "bcc"]), [0.3, 0.75]
    )
    with pytest.raises(DataError, match="not among the classes"):
        malignant_probability(probs, ["mel", "bcc", "nv"], ["scc"])
    with pytest.raises(DataError, match="3 probability columns"):
        malignant_probability(probs, ["mel", "nv"], ["mel"])
