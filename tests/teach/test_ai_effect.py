"""Unaided vs aided statistics on a hand-worked example, and planted effects recovered."""

from __future__ import annotations

import numpy as np
import pytest

from skinml.stats import cohen_kappa
from skinml.teach.ai_effect import (
    ai_effect,
    experience_band,
    group_mean_change,
    mcnemar_paired,
    pooled_rate,
)
from skinml.teach.scoring import case_weights, kappa_resamples, kappa_with_ci

# Classes 0, 1, 2; class 1 is malignant. Case by case (u = unaided, a = aided):
# c0 AI right, u wrong -> a right (followed a right AI)   c4 AI wrong, u = AI (wrong), unchanged
# c1 all right                                           c5 all right
# c2 AI right, u wrong -> a right                        c6 AI right, u wrong, kept (overrode)
# c3 AI wrong, u right -> a = AI (followed a wrong AI)   c7 AI right, u blank -> a right
REF = np.array([0, 1, 2, 0, 1, 2, 0, 1])
AI = np.array([0, 1, 2, 1, 0, 2, 0, 1])
UNAIDED = np.array([[1, 1, 0, 0, 0, 2, 2, -1], [0, 1, 2, 0, 1, 2, 0, 1]])
AIDED = np.array([[0, 1, 2, 1, 0, 2, 2, 1], [0, 1, 2, 0, 1, 2, 0, 1]])
MALIGNANT = np.array([False, True, False])


@pytest.fixture(scope="module")
def effect():
    return ai_effect(UNAIDED, AIDED, REF, MALIGNANT, AI, n_bootstrap=500, seed=1)


def test_hand_worked_counts(effect) -> None:
    assert effect.accuracy.unaided.tolist() == [3 / 8, 1.0]
    assert effect.accuracy.aided.tolist() == [5 / 8, 1.0]
    assert effect.changes["n_changed"].tolist() == [4, 0]
    assert effect.changes["n_changed_to_correct"].tolist() == [3, 0]  # c0, c2, c7 (blank)
    assert effect.changes["n_changed_to_incorrect"].tolist() == [1, 0]  # c3
    assert effect.changes["n_changed_wrong_to_wrong"].tolist() == [0, 0]
    r = effect.reliance
    assert r["n_ai_wrong_disagreed"].tolist() == [1, 2]  # c3 (c4 agreed with the wrong AI)
    assert r["n_followed_wrong_ai"].tolist() == [1, 0]
    assert r["n_ai_right_disagreed"].tolist() == [4, 0]  # c0, c2, c6, c7; sheet 2 = the key
    assert r["n_overrode_right_ai"].tolist() == [1, 0]  # c6
    # malignant cases c1, c4, c7: unaided calls class 1 on c1 only; aided on c1 and c7
    assert effect.malignant_sensitivity.unaided[0] == pytest.approx(1 / 3)
    assert effect.malignant_sensitivity.aided[0] == pytest.approx(2 / 3)
    # on the 6 cases the AI got right: 2 -> 5 correct; on its 2 wrong cases: 1 -> 0
    assert effect.accuracy_ai_right.unaided[0] == pytest.approx(2 / 6)
    assert effect.accuracy_ai_right.aided[0] == pytest.approx(5 / 6)
    assert effect.accuracy_ai_wrong.unaided[0] == pytest.approx(1 / 2)
    assert effect.accuracy_ai_wrong.aided[0] == 0.0


def test_mcnemar_is_exact_binomial_on_discordant_cases(effect) -> None:
    # 1 case right only unaided, 3 right only aided: 2 * P(X <= 1 | n=4, p=1/2) = 10/16
    assert effect.accuracy.p_value[0] == pytest.approx(0.625)
    assert effect.accuracy.p_value[1] == 1.0
    first = np.array([[True] * 10 + [False] * 2])
    second = np.array([[False] * 10 + [True] * 2])
    assert mcnemar_paired(first, second)[0] == pytest.approx(2 * 79 / 4096)  # n=12, k<=2


def test_kappa_matches_skinml_stats(effect) -> None:
    for codes, got in ((UNAIDED[0], effect.kappa.unaided[0]), (AIDED[0], effect.kappa.aided[0])):
        labels = np.where(codes == -1, "blank", codes.astype(str))
        assert got == pytest.approx(cohen_kappa(labels, REF.astype(str), n_bootstrap=10).value)


def test_paired_intervals_bracket_the_change(effect) -> None:
    for m in effect.metrics().values():
        ok = np.isfinite(m.diff_low)
        assert (m.diff_low[ok] <= m.diff[ok] + 1e-12).all()
        assert (m.diff[ok] <= m.diff_high[ok] + 1e-12).all()
    # the second sheet never changed an answer: every resample has a zero change
    assert effect.accuracy.diff_low[1] == effect.accuracy.diff_high[1] == 0.0


def test_no_bootstrap_gives_no_interval() -> None:
    e = ai_effect(UNAIDED, AIDED, REF, MALIGNANT, AI, n_bootstrap=0)
    assert np.isnan(e.accuracy.diff_low).all() and e.accuracy.diff[0] == pytest.approx(0.25)


def test_kappa_resamples_give_kappa_with_ci_intervals(rng) -> None:
    codes = rng.integers(-1, 4, size=(6, 30))
    ref = rng.integers(0, 4, size=30)
    _, lo, hi = kappa_with_ci(codes, ref, 4, n_bootstrap=300, seed=7)
    boot = kappa_resamples(codes, ref, 4, case_weights(30, 300, 7))
    q = np.nanquantile(boot, [0.025, 0.975], axis=1)
    np.testing.assert_allclose(q[0], lo)
    np.testing.assert_allclose(q[1], hi)


def test_planted_cohort_effect_is_recovered() -> None:
    """SIMULATED: 40 trainees x 60 cases, unaided 50% right, AI right on 80%, follow rate 0.7."""
    rng = np.random.default_rng(3)
    n_t, n_c, k = 40, 60, 5
    ref = rng.integers(0, k, n_c)
    ai = np.where(rng.random(n_c) < 0.8, ref, (ref + 1) % k)
    unaided = np.where(rng.random((n_t, n_c)) < 0.5, ref, (ref + 2) % k)
    follow = rng.random((n_t, n_c)) < 0.7
    aided = np.where(follow, ai[None, :], unaided)
    e = ai_effect(unaided, aided, ref, np.eye(k, dtype=bool)[0], ai, n_bootstrap=400, seed=0)
    everyone = np.arange(n_t)
    g = group_mean_change(e.accuracy, everyone, seed=0)
    # expected aided accuracy: follow * AI accuracy + (1 - follow) * unaided accuracy
    expected = 0.7 * (ai == ref).mean() + 0.3 * 0.5 - 0.5
    assert g["change_ci_low"] < expected < g["change_ci_high"]
    assert g["change_ci_low"] > 0
    r = e.reliance
    over = pooled_rate(r["n_followed_wrong_ai"], r["n_ai_wrong_disagreed"], everyone, seed=0)
    under = pooled_rate(r["n_overrode_right_ai"], r["n_ai_right_disagreed"], everyone, seed=0)
    assert over["ci_low"] < 0.7 < over["ci_high"]
    assert under["ci_low"] < 0.3 < under["ci_high"]


def test_experience_bands() -> None:
    bands = experience_band(np.array([0.0, 0.5, 1.0, 2.9, 3.0, 6.0, 30.0, np.nan]))
    assert bands.tolist() == [
        "< 1 year",
        "< 1 year",
        "1 to < 3 years",
        "1 to < 3 years",
        "3 to < 6 years",
        "6 years or more",
        "6 years or more",
        "not given",
    ]
