"""The vectorised scoring core against hand counts and reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import percentileofscore
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar

from skinml.stats import cohen_kappa, fleiss_kappa, krippendorff_alpha
from skinml.teach.answers import NO_ANSWER
from skinml.teach.cohort import cohort_agreement, percentile_of
from skinml.teach.scoring import kappa_with_ci, mcnemar_vs, score_answers

# classes: 0 akiec, 1 bcc, 2 bkl, 3 df, 4 mel, 5 nv, 6 vasc; malignant: akiec, bcc, mel
MAL = np.array([True, True, False, False, True, False, False])
REF = np.array([4, 5, 1, 5, 4, 2, 5, 4, 2, 5])


def test_hand_counted_example() -> None:
    # two melanomas called nv, the bcc left blank, one nv called mel, one mel called bcc
    ans = np.array([[5, 5, NO_ANSWER, 4, 5, 2, 5, 1, 2, 5]])
    s = score_answers(ans, REF, MAL, n_bootstrap=0)
    assert s.n_correct.tolist() == [5]
    assert s.accuracy[0] == pytest.approx(0.5)
    assert s.n_unanswered.tolist() == [1]
    mel, nv, bcc = 4, 5, 1
    assert s.sensitivity[0, mel] == 0.0  # 3 melanomas, none named mel
    assert s.sensitivity[0, nv] == pytest.approx(3 / 4)
    assert s.specificity[0, nv] == pytest.approx(4 / 6)  # two melanomas called nv
    assert s.sensitivity[0, bcc] == 0.0
    assert np.isnan(s.sensitivity[0, 3])  # no df in the set
    # 4 malignant cases; only the melanoma called bcc was recognised as malignant
    assert s.n_malignant == 4
    assert s.malignant_sensitivity[0] == pytest.approx(1 / 4)
    assert s.malignant_specificity[0] == pytest.approx(5 / 6)  # one nv called mel
    assert np.flatnonzero(s.missed_malignant[0]).tolist() == [0, 2, 4]
    assert np.flatnonzero(s.wrong_malignant_type[0]).tolist() == [7]
    assert s.confusion[0, bcc, -1] == 1  # the blank lands in the "unanswered" column
    assert s.confusion.sum() == len(REF)
    assert s.balanced_accuracy[0] == pytest.approx(np.mean([0.0, 1.0, 0.0, 0.75]))


def test_kappa_matches_skinml_stats_and_sklearn() -> None:
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 7, 60)
    ans = np.where(rng.random((5, 60)) < 0.6, ref, rng.integers(0, 7, (5, 60)))
    ans[rng.random((5, 60)) < 0.05] = NO_ANSWER
    k, lo, hi = kappa_with_ci(ans, ref, 7, n_bootstrap=300, seed=1)
    for i in range(5):
        labelled = np.where(ans[i] == NO_ANSWER, "unanswered", ans[i].astype(str))
        assert k[i] == pytest.approx(cohen_kappa_score(labelled, ref.astype(str)), abs=1e-12)
    for i in range(2):  # the per-sheet loop of skinml.stats is slow: check two sheets
        labelled = np.where(ans[i] == NO_ANSWER, "unanswered", ans[i].astype(str))
        expected = cohen_kappa(labelled, ref.astype(str), n_bootstrap=300, seed=1)
        assert k[i] == pytest.approx(expected.value, abs=1e-12)
        # different resampling streams, same sampling distribution
        assert lo[i] == pytest.approx(expected.ci_low, abs=0.1)
        assert hi[i] == pytest.approx(expected.ci_high, abs=0.1)
        assert lo[i] < k[i] < hi[i]


def test_kappa_undefined_is_nan_not_an_error() -> None:
    ref = np.zeros(8, dtype=int)
    k, lo, hi = kappa_with_ci(np.zeros((1, 8), dtype=int), ref, 3, n_bootstrap=50)
    assert np.isnan(k[0]) and np.isnan(lo[0]) and np.isnan(hi[0])


def test_mcnemar_matches_statsmodels() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random((6, 50)) < 0.7
    ai = rng.random(50) < 0.8
    out = mcnemar_vs(correct, ai)
    for i in range(6):
        b = int((correct[i] & ~ai).sum())
        c = int((~correct[i] & ai).sum())
        both = int((correct[i] & ai).sum())
        neither = int((~correct[i] & ~ai).sum())
        expected = mcnemar(np.array([[both, b], [c, neither]]), exact=True).pvalue
        assert out["p_value"][i] == pytest.approx(expected)
        assert out["only_trainee"][i] == b and out["only_other"][i] == c


def test_percentile_matches_scipy() -> None:
    pop = np.array([0.5, 0.6, 0.6, 0.7, 0.9])
    for v in (0.4, 0.6, 0.65, 0.9, 1.0):
        expected = percentileofscore(pop, v, kind="mean")
        assert percentile_of(np.array([v]), pop)[0] == pytest.approx(expected)


def test_cohort_agreement_uses_all_answers() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 4, 40)
    codes = np.where(rng.random((6, 40)) < 0.7, truth, rng.integers(0, 4, (6, 40)))
    full = cohort_agreement(codes)
    assert full.fleiss_kappa == pytest.approx(fleiss_kappa(codes.T))
    assert full.krippendorff_alpha == pytest.approx(krippendorff_alpha(codes))
    assert full.n_complete_cases == 40
    gaps = codes.copy()
    gaps[0, :5] = NO_ANSWER
    with_gaps = cohort_agreement(gaps)
    assert with_gaps.n_complete_cases == 35
    assert np.isfinite(with_gaps.krippendorff_alpha)


def test_score_500_by_100_shapes() -> None:
    rng = np.random.default_rng(9)
    ref = rng.integers(0, 7, 100)
    codes = np.where(rng.random((500, 100)) < 0.65, ref, rng.integers(0, 7, (500, 100)))
    s = score_answers(codes, ref, MAL, n_bootstrap=200)
    assert s.confusion.shape == (500, 7, 8)
    assert np.isfinite(s.kappa_low).all() and (s.kappa_low <= s.kappa).all()
    assert s.accuracy.mean() == pytest.approx(0.65 + 0.35 / 7, abs=0.02)
