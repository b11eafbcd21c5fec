"""Plain warnings: a chance-level AUC and a useless operating point are called that."""

from __future__ import annotations

import numpy as np

from skinml.evaluation import MalignancyThreshold, evaluate, evaluation_warnings
from skinml.evaluation.verdict import auc_warning


def test_auc_interval_including_one_half_is_called_chance():
    text = auc_warning(0.59, 0.41, 0.77)
    assert text.startswith("not better than chance on this test set: AUC 0.59, 95% CI 0.41-0.77")
    assert auc_warning(0.82, 0.71, 0.91) is None
    assert auc_warning(0.48, float("nan"), float("nan")).startswith("not better than chance")
    assert auc_warning(float("nan"), None, None) is None


def test_scores_unrelated_to_the_truth_get_the_chance_warning():
    y = np.tile([1, 0, 0, 1, 0, 1, 1, 0], 5)  # 40 cases, scores in no relation to them
    p_mel = np.linspace(0.1, 0.9, 40)
    probs = np.c_[1 - p_mel, p_mel]
    ev = evaluate(y, probs, ["nv", "mel"], ["mel"], threshold=0.5, n_bootstrap=200)
    auc = ev.headline["malignant_auc"]
    assert auc.ci_low <= 0.5 <= auc.ci_high  # the premise: this model is guessing
    warnings = evaluation_warnings(ev)
    assert any(
        w.startswith(f"not better than chance on this test set: AUC {auc.value:.2f}, 95% CI")
        for w in warnings
    )


def test_a_good_model_gets_no_warning(rng):
    y = rng.integers(0, 2, 200)
    p_mel = np.clip(0.5 + 0.4 * (2 * y - 1) + rng.normal(0, 0.1, 200), 0.01, 0.99)
    ev = evaluate(y, np.c_[1 - p_mel, p_mel], ["nv", "mel"], ["mel"], threshold=0.5)
    assert evaluation_warnings(ev) == []


def test_threshold_that_flags_every_case_is_called_useless():
    # validation scores of benign cases sit above the melanomas': the 0.95-sensitivity
    # threshold flags everything, on validation and test alike
    picker = MalignancyThreshold(0.95).fit(np.r_[0.2, 0.3, 0.8, 0.9], [1, 1, 0, 0])
    y = np.array([1] * 5 + [0] * 20)
    p_mel = np.r_[np.full(5, 0.4), np.full(20, 0.6)]
    ev = evaluate(y, np.c_[1 - p_mel, p_mel], ["nv", "mel"], ["mel"], threshold=picker)
    warnings = evaluation_warnings(ev)
    useless = [w for w in warnings if "operating point is useless" in w]
    assert len(useless) == 1
    assert "flags every one of the 20 benign cases as malignant" in useless[0]
    assert "specificity 0/20 (0.000), 95% CI 0.000-0.161" in useless[0]
    assert "p_malignant >= 0.2000" in useless[0]  # the threshold and where it came from


def test_threshold_that_flags_nothing_and_a_single_predicted_class():
    y = np.array([1] * 6 + [0] * 14)
    p_mel = np.full(20, 0.3)  # arg-max: every case nv; threshold 0.9: nothing flagged
    ev = evaluate(y, np.c_[1 - p_mel, p_mel], ["nv", "mel"], ["mel"], threshold=0.9)
    text = " | ".join(evaluation_warnings(ev))
    assert "flags none of the 6 malignant cases (sensitivity 0/6" in text
    assert "predicts the same class (nv) for all 20 test images (arg-max)" in text
    assert "not better than chance" in text  # constant scores: AUC exactly 0.5
