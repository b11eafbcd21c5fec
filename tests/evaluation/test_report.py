"""``evaluate`` and the metric functions agree with scikit-learn; CIs behave as CIs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
    roc_auc_score,
)

from skinml.errors import DataError
from skinml.evaluation import (
    HEADLINE,
    accuracy,
    balanced_accuracy,
    evaluate,
    expected_calibration_error,
    macro_auc,
)
from skinml.evaluation.metrics import binary_auc
from skinml.evaluation.report import safe_bootstrap
from skinml.modelfile import MetricWithCI
from skinml.stats import bootstrap_ci


def _noisy(rng: np.random.Generator, n: int, k: int = 7, strength: float = 1.5):
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + strength * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_metric_functions_agree_with_sklearn(rng):
    y, probs = _noisy(rng, 500)
    probs = np.round(probs, 2)  # ties, which sklearn counts as one half
    probs /= probs.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    pred[:5] = 6
    y[:30] = np.where(y[:30] == 6, 0, y[:30])  # make class 6 rarer
    assert accuracy(y, pred) == pytest.approx(accuracy_score(y, pred))
    assert balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    assert macro_auc(y, probs) == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert binary_auc(y == 2, probs[:, 2]) == pytest.approx(roc_auc_score(y == 2, probs[:, 2]))
    with pytest.raises(ValueError):
        binary_auc(np.zeros(5, dtype=bool), np.arange(5.0))


def test_evaluate_headline_and_per_class_match_sklearn(rng, classes, malignant):
    y, probs = _noisy(rng, 800)
    ev = evaluate(y, probs, classes, malignant, n_bootstrap=0, split="val")
    pred = probs.argmax(axis=1)
    mal = np.isin(y, [0, 1, 4])
    p_mal = probs[:, [0, 1, 4]].sum(axis=1)
    flag = np.isin(pred, [0, 1, 4])
    h = {k: v.value for k, v in ev.headline.items()}
    assert list(ev.headline) == list(HEADLINE)
    assert h["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert h["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert h["macro_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert h["malignant_auc"] == pytest.approx(roc_auc_score(mal, p_mal))
    assert h["malignant_sensitivity"] == pytest.approx(recall_score(mal, flag))
    assert h["malignant_specificity"] == pytest.approx(recall_score(~mal, ~flag))
    assert h["ece"] == pytest.approx(expected_calibration_error(y, probs))  # no bootstrap
    pc = ev.per_class
    assert list(pc["class"]) == list(classes)
    assert list(pc["n"]) == np.bincount(y, minlength=7).tolist()
    np.testing.assert_allclose(pc["sensitivity"], recall_score(y, pred, average=None))
    np.testing.assert_allclose(pc["f1"], f1_score(y, pred, average=None))
    np.testing.assert_allclose(pc["auc"], [roc_auc_score(y == k, probs[:, k]) for k in range(7)])
    spec0 = np.mean(pred[y != 0] != 0)
    assert pc.loc[0, "specificity"] == pytest.approx(spec0)
    assert ev.confusion.sum() == 800 and np.trace(ev.confusion) == (pred == y).sum()
    assert list(pc["malignant"]) == [c in malignant for c in classes]


def test_auc_gets_the_bootstrap_and_accuracy_the_wilson_interval(rng, classes, malignant):
    from statsmodels.stats.proportion import proportion_confint

    y, probs = _noisy(rng, 400)
    ev = evaluate(y, probs, classes, malignant, n_bootstrap=60, seed=7)
    pred = probs.argmax(axis=1)
    auc = bootstrap_ci(
        lambda a, b: roc_auc_score(a, b, multi_class="ovr"), y, probs, n_bootstrap=60, seed=7
    )
    got = ev.headline["macro_auc"]
    assert (got.ci_low, got.ci_high) == pytest.approx((auc.ci_low, auc.ci_high))
    assert got.ci_low <= got.value <= got.ci_high
    correct = int((pred == y).sum())
    acc = ev.headline["accuracy"]
    assert (acc.successes, acc.n) == (correct, 400)
    assert acc.value == pytest.approx(accuracy_score(y, pred))
    wilson = proportion_confint(correct, 400, alpha=0.05, method="wilson")
    assert (acc.ci_low, acc.ci_high) == pytest.approx(wilson)


def test_perfect_sensitivity_on_eight_cases_is_not_reported_as_certain():
    """8 of 8 malignant cases flagged: Wilson 0.676-1.000, never 1.000 [1.000, 1.000]."""
    y = np.array([1] * 8 + [0] * 32)  # 8 melanomas, 32 naevi
    p_mel = np.r_[np.full(8, 0.9), np.linspace(0.05, 0.6, 32)]
    probs = np.c_[1 - p_mel, p_mel]
    ev = evaluate(y, probs, ["nv", "mel"], ["mel"], threshold=0.5, n_bootstrap=200)
    sens = ev.headline["malignant_sensitivity"]
    assert (sens.successes, sens.n) == (8, 8)
    assert (sens.ci_low, sens.ci_high) == pytest.approx((0.6756, 1.0), abs=1e-4)
    assert "8/8 (1.000), 95% CI 0.676-1.000 (Wilson)" in ev.summary()
    assert "p_malignant >= 0.5000" in ev.summary()
    row = ev.interval_table().set_index("metric").loc["malignant_sensitivity"]
    assert row["interval"] == "wilson" and (row["successes"], row["denominator"]) == (8, 8)
    assert row["ci_low"] == pytest.approx(0.6756, abs=1e-4)
    record = ev.model_metrics()["test_malignant_sensitivity"]
    assert (record.numerator, record.denominator, record.interval) == (8, 8, "wilson")
    assert record.ci_low == pytest.approx(0.6756, abs=1e-4)


def _right_with_probability(rng: np.random.Generator, n: int, p_right: float):
    y = rng.integers(0, 2, n)
    right = rng.random(n) < p_right
    p1 = np.where(right == (y == 1), 0.7, 0.3)
    return y, np.c_[1 - p1, p1]


def test_accuracy_ci_covers_the_true_value(rng):
    # cases are right with probability 0.8, so the true accuracy is 0.8
    y, probs = _right_with_probability(rng, 400, 0.8)
    ci = evaluate(y, probs, ["nv", "mel"], ["mel"], n_bootstrap=500).headline["accuracy"]
    assert ci.ci_low <= 0.8 <= ci.ci_high
    assert 0.02 < ci.ci_high - ci.ci_low < 0.12  # about 2 * 1.96 * sqrt(.8 * .2 / 400) = 0.078
    # and over repeated samples the interval covers 0.8 about 95% of the time
    covered = 0
    for _ in range(60):
        y, probs = _right_with_probability(rng, 300, 0.8)
        rep = safe_bootstrap(
            accuracy,
            y,
            probs.argmax(axis=1),
            n_bootstrap=300,
            seed=int(rng.integers(1 << 30)),
            groups=None,
        )
        covered += rep.ci_low <= 0.8 <= rep.ci_high
    assert covered >= 51  # nominal 57 of 60; binomial slack


def test_patient_grouping_widens_the_interval(rng, classes, malignant):
    y, probs = _noisy(rng, 150)
    rep = 6  # every patient photographed six times: the images add no information
    y6, p6, patients = (
        np.repeat(y, rep),
        np.repeat(probs, rep, axis=0),
        np.repeat(np.arange(150), rep),
    )
    naive = evaluate(y6, p6, classes, malignant, n_bootstrap=300).headline["accuracy"]
    grouped = evaluate(y6, p6, classes, malignant, n_bootstrap=300, groups=patients)
    width = grouped.headline["accuracy"].ci_high - grouped.headline["accuracy"].ci_low
    assert width > 1.8 * (naive.ci_high - naive.ci_low)
    assert grouped.n_groups == 150


def test_outputs_for_mlflow_json_and_model_file(rng, classes, malignant):
    y, probs = _noisy(rng, 300)
    ev = evaluate(
        y,
        probs,
        classes,
        malignant,
        n_bootstrap=50,
        split="test",
        threshold=0.4,
        probs_before_calibration=probs,
    )
    flat = ev.flat_metrics()
    assert flat["test_n"] == 300
    assert flat["test_accuracy"] == ev.headline["accuracy"].value
    assert flat["test_accuracy_ci_low"] == ev.headline["accuracy"].ci_low
    assert flat["test_malignant_threshold"] == 0.4
    assert "test_ece_before_calibration" in flat and "test_mel_sensitivity" in flat
    assert all(isinstance(v, float) and np.isfinite(v) for v in flat.values())
    assert set(ev.flat_metrics("final")) == {k.replace("test_", "final_", 1) for k in flat}
    doc = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert doc["split"] == "test" and doc["n"] == 300 and doc["seed"] == 0
    assert doc["headline"]["macro_auc"]["n_bootstrap"] == 50
    assert len(doc["per_class"]) == 7 and doc["confusion"][0][0] == int(ev.confusion[0, 0])
    records = ev.model_metrics()
    assert isinstance(records["test_accuracy"], MetricWithCI)
    assert records["test_accuracy"].n == 300 and records["test_accuracy"].split == "test"
    assert records["test_macro_auc"].interval == "percentile bootstrap"
    assert records["test_ece"].interval == "bias-corrected basic bootstrap"
    assert records["test_accuracy"].denominator == 300
    assert "test: n=300" in ev.summary()
    table = ev.interval_table()
    assert set(table["metric"]) <= set(ev.headline) and (table["split"] == "test").all()


def test_string_labels_and_undefined_metrics_are_reported_not_raised(rng):
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])
    ev = evaluate(["nv", "nv", "nv", "nv"], probs, ["nv", "mel"], ["mel"], n_bootstrap=20)
    assert ev.headline["accuracy"].value == 0.75
    assert np.isnan(ev.headline["malignant_sensitivity"].value)  # no malignant case
    assert np.isnan(ev.headline["macro_auc"].value)
    assert "test_malignant_sensitivity" not in ev.flat_metrics()
    assert (
        json.loads(json.dumps(ev.to_dict(), allow_nan=False))["headline"]["macro_auc"]["value"]
        is None
    )
    no_mal = evaluate([0, 1, 0, 0], probs, ["nv", "bkl"], [], n_bootstrap=0)
    assert set(no_mal.headline) == set(HEADLINE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probs": np.array([[2.0, -1.0], [0.0, 1.0]])}, "softmax"),
        ({"probs": np.array([[0.5, 0.6], [0.0, 1.0]])}, "sum to 1"),
        ({"y_true": [0, 1, 1]}, "3 cases"),
        ({"y_true": ["nv", "scc"]}, "scc"),
        ({"malignant": ["scc"]}, "not among"),
        ({"classes": ["nv"]}, "1 class names"),
        ({"groups": [1]}, "one patient"),
    ],
)
def test_evaluate_rejects_bad_input_with_clear_errors(kwargs, message):
    args = {
        "y_true": [0, 1],
        "probs": np.array([[0.6, 0.4], [0.3, 0.7]]),
        "classes": ["nv", "mel"],
        "malignant": ["mel"],
    }
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(DataError, match=message):
        evaluate(
            args["y_true"],
            args["probs"],
            args["classes"],
            args["malignant"],
            n_bootstrap=0,
            **extra,
        )


def test_the_summary_names_what_the_bootstrap_resamples():
    import pandas as pd

    from skinml.data.manifest import cluster_unit, validate_manifest

    base = {"image": ["a.jpg", "b.jpg", "c.jpg"], "label": ["nv", "mel", "nv"]}
    no_ids = validate_manifest(pd.DataFrame(base))
    lesions_only = validate_manifest(pd.DataFrame({**base, "lesion_id": ["L1", "L1", "L2"]}))
    patients = validate_manifest(
        pd.DataFrame({**base, "lesion_id": ["L1", "L2", "L3"], "patient_id": ["P1", "P1", "P2"]})
    )
    assert cluster_unit(no_ids) == "images"
    assert cluster_unit(lesions_only) == "lesions"  # HAM10000: no patient IDs
    assert cluster_unit(patients) == "patients"

    y = np.array([0, 1, 0, 1, 0, 1])
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.2, 0.8]])
    ev = evaluate(
        y,
        p,
        ["nv", "mel"],
        ["mel"],
        groups=[1, 1, 2, 2, 3, 3],
        group_unit="lesions",
        n_bootstrap=20,
    )
    assert "resampling 3 lesions" in ev.summary() and "patients" not in ev.summary()


def test_every_bootstrapped_interval_contains_its_estimate_even_for_a_calibrated_model(rng):
    # Well calibrated by construction: labels drawn from the predicted probabilities. The
    # plug-in ECE is then pure sampling noise, and a percentile interval would lie above it.
    n, k = 600, 3
    probs = rng.dirichlet(np.ones(k) * 2.0, n)
    y = np.array([rng.choice(k, p=p) for p in probs])
    ev = evaluate(y, probs, ["mel", "nv", "bkl"], ["mel"], n_bootstrap=300, split="test")
    for name, ci in ev.headline.items():
        assert ci.ci_low <= ci.value <= ci.ci_high, (name, ci)
    ece = ev.headline["ece"]
    assert ece.plugin == pytest.approx(expected_calibration_error(y, probs))
    assert ece.value < ece.plugin and ece.ci_low >= 0.0
    note = ev.interval_table().set_index("metric").loc["ece", "note"]
    assert f"{ece.plugin:.4f}" in note
