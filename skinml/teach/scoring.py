"""Score answer sheets against a reference: every metric for every sheet at once.

The core works on integer matrices (sheets x cases) so that a cohort of 500
trainees on 100 cases is scored in well under a second: confusion matrices
come from one ``bincount``, Cohen's κ and its bootstrap interval are computed
for all sheets together from shared resampling indices. Unanswered cases
(code -1) are scored as wrong everywhere: they lower accuracy, the sensitivity
of their true diagnosis, and malignant sensitivity (an unanswered malignant
case is a missed malignancy) or specificity (an unanswered benign case was
not cleared). For κ they form their own "unanswered" category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skinml.teach.answers import NO_ANSWER


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval (NaN where ``n == 0``), via statsmodels."""
    from statsmodels.stats.proportion import proportion_confint

    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    lo = np.full(np.broadcast(successes, n).shape, np.nan)
    hi = lo.copy()
    ok = np.broadcast_to(n > 0, lo.shape)
    s_b, n_b = np.broadcast_to(successes, lo.shape), np.broadcast_to(n, lo.shape)
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(s_b[ok], n_b[ok], alpha=1 - level, method="wilson")
    return lo, hi


def _counts(x: np.ndarray, n_cat: int) -> np.ndarray:
    """Category counts along the last axis: shape ``x.shape[:-1] + (n_cat,)``."""
    lead, n = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, n)
    m = flat.shape[0]
    offs = (np.arange(m, dtype=np.int64) * n_cat)[:, None]
    counts = np.bincount((flat + offs).ravel(), minlength=m * n_cat)
    return counts.reshape((*lead, n_cat))


def _kappa_from(a: np.ndarray, b: np.ndarray, n_cat: int) -> np.ndarray:
    """Cohen's κ along the last axis for integer codes 0..n_cat-1 (NaN when undefined).

    ``b`` may have fewer leading dimensions than ``a`` (a rater shared by all
    sheets); its counts are computed once and broadcast, not copied per sheet.
    """
    n = a.shape[-1]
    po = (a == b).mean(axis=-1)
    pe = (_counts(a, n_cat) * _counts(b, n_cat)).sum(axis=-1) / float(n * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pe < 1.0, (po - pe) / (1.0 - pe), np.nan)


def kappa_with_ci(
    codes: np.ndarray,
    other: np.ndarray,
    n_classes: int,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    chunk: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohen's κ of every sheet with ``other``, with a percentile bootstrap interval.

    Equals ``skinml.stats.cohen_kappa`` with unanswered cases mapped to an
    explicit "unanswered" label (tested), but resamples all sheets with the
    same case indices in one vectorised pass instead of one Python loop per sheet.

    Args:
        codes: (n_sheets, n_cases) class codes, -1 = unanswered.
        other: (n_cases,) or (n_sheets, n_cases) codes of the other rater.
        n_classes: number of classes (codes 0..n_classes-1).
        n_bootstrap: resamples (0 = point estimate only, NaN interval).
        seed: resampling seed.
        level: interval coverage.
        chunk: sheets per vectorised block (bounds memory).

    Returns:
        κ, lower and upper bound, each of shape (n_sheets,). A resample where κ
        is undefined (one category only) is skipped; when more than half are,
        the interval is NaN, as in ``skinml.stats.bootstrap_ci``.
    """
    a, b, n_cat = _as_categories(codes, other, n_classes)
    kappa = _kappa_from(a, b, n_cat)
    lo = np.full(len(a), np.nan)
    hi = np.full(len(a), np.nan)
    if n_bootstrap <= 0 or a.shape[1] == 0:
        return kappa, lo, hi
    weights = case_weights(a.shape[1], n_bootstrap, seed)
    alpha = (1.0 - level) / 2.0
    for sl, boot in _kappa_boot_chunks(a, b, n_cat, weights, chunk):
        valid = np.isfinite(boot)
        enough = valid.sum(axis=1) >= n_bootstrap / 2
        rows = np.arange(len(a))[sl]
        full = valid.all(axis=1)  # the common case: plain (fast, vectorised) quantiles
        if full.any():
            q = np.quantile(boot[full], [alpha, 1.0 - alpha], axis=1)
            lo[rows[full]], hi[rows[full]] = q[0], q[1]
        partial = enough & ~full
        if partial.any():
            q = np.nanquantile(boot[partial], [alpha, 1.0 - alpha], axis=1)
            lo[rows[partial]], hi[rows[partial]] = q[0], q[1]
    return kappa, lo, hi


def case_weights(n_cases: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """(n_bootstrap, n_cases) resamples of cases as weights (how often each case was drawn).

    A resample as a weight vector turns every count it needs into one matrix product
    with the one-hot answers (BLAS, no copies); sharing the weights between two
    measurements on the same cases makes their bootstrap paired.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_cases, size=(n_bootstrap, n_cases))
    flat = (idx + (np.arange(n_bootstrap) * n_cases)[:, None]).ravel()
    return (
        np.bincount(flat, minlength=n_bootstrap * n_cases)
        .reshape(n_bootstrap, n_cases)
        .astype(float)
    )


def kappa_resamples(
    codes: np.ndarray, other: np.ndarray, n_classes: int, weights: np.ndarray, chunk: int = 128
) -> np.ndarray:
    """κ of every sheet with ``other`` under each case resample: (n_sheets, n_bootstrap).

    NaN where κ is undefined in a resample (one category only).
    """
    a, b, n_cat = _as_categories(codes, other, n_classes)
    out = np.full((len(a), len(weights)), np.nan)
    for sl, boot in _kappa_boot_chunks(a, b, n_cat, weights, chunk):
        out[sl] = boot
    return out


def _as_categories(codes, other, n_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes with unanswered (-1) as its own last category, for κ."""
    a = np.where(codes == NO_ANSWER, n_classes, codes).astype(np.int32)
    b = np.where(other == NO_ANSWER, n_classes, other).astype(np.int32)
    return np.atleast_2d(a), b, n_classes + 1


def _kappa_boot_chunks(a: np.ndarray, b: np.ndarray, n_cat: int, weights: np.ndarray, chunk: int):
    """Yield (slice of sheets, κ per sheet and resample) block by block (bounds memory)."""
    n_bootstrap, n = weights.shape
    cats = np.arange(n_cat)
    cb_shared = weights @ (b[:, None] == cats).astype(float) if b.ndim == 1 else None
    for start in range(0, len(a), chunk):
        sl = slice(start, start + chunk)
        a_sl = a[sl]
        m = len(a_sl)
        onehot_a = (a_sl.T[:, :, None] == cats).reshape(n, m * n_cat).astype(float)
        ca = (weights @ onehot_a).reshape(n_bootstrap, m, n_cat)
        if cb_shared is not None:
            agree = (a_sl == b[None, :]).T.astype(float)  # (n, m)
            pe = np.einsum("bmk,bk->bm", ca, cb_shared)
        else:
            b_sl = b[sl]
            agree = (a_sl == b_sl).T.astype(float)
            onehot_b = (b_sl.T[:, :, None] == cats).reshape(n, m * n_cat).astype(float)
            cb = (weights @ onehot_b).reshape(n_bootstrap, m, n_cat)
            pe = np.einsum("bmk,bmk->bm", ca, cb)
        po = (weights @ agree) / n
        pe = pe / float(n * n)
        with np.errstate(divide="ignore", invalid="ignore"):
            yield sl, np.where(pe < 1.0 - 1e-12, (po - pe) / (1.0 - pe), np.nan).T  # (m, B)


@dataclass(frozen=True)
class ScoreArrays:
    """Every per-sheet metric as arrays (first axis = sheets).

    Attributes:
        correct: (S, C) bool, answer equals reference.
        accuracy / accuracy_low / accuracy_high: (S,) with Wilson interval.
        balanced_accuracy: (S,) mean sensitivity over diagnoses in the set.
        sensitivity / specificity: (S, K); NaN for a diagnosis absent from the set.
        class_counts: (K,) reference cases per diagnosis.
        confusion: (S, K, K+1) reference x answer; last column = unanswered.
        malignant_sensitivity / _specificity (+ _low/_high): (S,) Wilson intervals.
        missed_malignant: (S, C) malignant case called benign or left unanswered.
        wrong_malignant_type: (S, C) malignant case called another malignant diagnosis.
        kappa / kappa_low / kappa_high: (S,) Cohen's κ with the reference.
        n_unanswered: (S,) cases without an answer.
    """

    correct: np.ndarray
    accuracy: np.ndarray
    accuracy_low: np.ndarray
    accuracy_high: np.ndarray
    balanced_accuracy: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    class_counts: np.ndarray
    confusion: np.ndarray
    n_malignant: int
    n_benign: int
    malignant_sensitivity: np.ndarray
    malignant_sensitivity_low: np.ndarray
    malignant_sensitivity_high: np.ndarray
    malignant_specificity: np.ndarray
    malignant_specificity_low: np.ndarray
    malignant_specificity_high: np.ndarray
    missed_malignant: np.ndarray
    wrong_malignant_type: np.ndarray
    kappa: np.ndarray
    kappa_low: np.ndarray
    kappa_high: np.ndarray
    n_unanswered: np.ndarray

    @property
    def n_correct(self) -> np.ndarray:
        return self.correct.sum(axis=1)


def score_answers(
    codes: np.ndarray,
    reference: np.ndarray,
    malignant_mask: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ScoreArrays:
    """Score sheets against reference codes (pure function).

    Args:
        codes: (S, C) answer codes, -1 = unanswered.
        reference: (C,) reference codes.
        malignant_mask: (K,) which classes are malignant.
        n_bootstrap: resamples for the κ interval (0 to skip).
        seed: bootstrap seed.
        level: interval coverage.
    """
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int32))
    ref = np.asarray(reference, dtype=np.int32)
    mal = np.asarray(malignant_mask, dtype=bool)
    S, C = codes.shape
    K = len(mal)
    answered = codes != NO_ANSWER
    correct = codes == ref[None, :]
    n_correct = correct.sum(axis=1)
    acc = n_correct / C
    acc_lo, acc_hi = wilson_interval(n_correct, np.full(S, C), level)

    col = np.where(answered, codes, K)
    flat = (np.arange(S)[:, None] * K * (K + 1) + ref[None, :] * (K + 1) + col).ravel()
    confusion = np.bincount(flat, minlength=S * K * (K + 1)).reshape(S, K, K + 1)
    class_counts = np.bincount(ref, minlength=K)
    hits = confusion[:, np.arange(K), np.arange(K)]
    called = confusion[:, :, :K].sum(axis=1)
    negatives = C - class_counts
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = np.where(class_counts > 0, hits / class_counts, np.nan)
        spec = np.where(negatives > 0, (negatives - (called - hits)) / negatives, np.nan)
    present = class_counts > 0
    bal = sens[:, present].mean(axis=1) if present.any() else np.full(S, np.nan)

    ref_mal = mal[ref]
    call_mal = answered & mal[np.where(answered, codes, 0)]
    call_ben = answered & ~call_mal
    n_mal, n_ben = int(ref_mal.sum()), int((~ref_mal).sum())
    tp = (call_mal & ref_mal[None, :]).sum(axis=1)
    tn = (call_ben & ~ref_mal[None, :]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        msens = tp / n_mal if n_mal else np.full(S, np.nan)
        mspec = tn / n_ben if n_ben else np.full(S, np.nan)
    ms_lo, ms_hi = wilson_interval(tp, np.full(S, n_mal), level)
    mp_lo, mp_hi = wilson_interval(tn, np.full(S, n_ben), level)
    missed = ref_mal[None, :] & ~call_mal
    wrong_type = ref_mal[None, :] & call_mal & ~correct

    kappa, k_lo, k_hi = kappa_with_ci(
        codes, ref, K, n_bootstrap=n_bootstrap, seed=seed, level=level
    )
    return ScoreArrays(
        correct=correct,
        accuracy=acc,
        accuracy_low=acc_lo,
        accuracy_high=acc_hi,
        balanced_accuracy=bal,
        sensitivity=sens,
        specificity=spec,
        class_counts=class_counts,
        confusion=confusion,
        n_malignant=n_mal,
        n_benign=n_ben,
        malignant_sensitivity=np.asarray(msens, dtype=float),
        malignant_sensitivity_low=ms_lo,
        malignant_sensitivity_high=ms_hi,
        malignant_specificity=np.asarray(mspec, dtype=float),
        malignant_specificity_low=mp_lo,
        malignant_specificity_high=mp_hi,
        missed_malignant=missed,
        wrong_malignant_type=wrong_type,
        kappa=kappa,
        kappa_low=k_lo,
        kappa_high=k_hi,
        n_unanswered=(~answered).sum(axis=1),
    )


def mcnemar_vs(correct: np.ndarray, other_correct: np.ndarray) -> dict[str, np.ndarray]:
    """Exact McNemar test of each sheet against another reader on the same cases.

    Args:
        correct: (S, C) bool, each sheet right/wrong per case.
        other_correct: (C,) bool, the other reader (e.g. the AI) right/wrong.

    Returns:
        ``only_trainee`` (trainee right, other wrong), ``only_other`` and
        ``p_value`` per sheet (statsmodels ``mcnemar(exact=True)``).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    only_t = (correct & ~other_correct[None, :]).sum(axis=1)
    only_o = (~correct & other_correct[None, :]).sum(axis=1)
    both = (correct & other_correct[None, :]).sum(axis=1)
    neither = (~correct & ~other_correct[None, :]).sum(axis=1)
    p = np.empty(len(correct))
    cache: dict[tuple[int, int], float] = {}
    for i, (b, c) in enumerate(zip(only_t.tolist(), only_o.tolist(), strict=True)):
        key = (min(b, c), max(b, c))
        if key not in cache:
            table = np.array([[both[i], b], [c, neither[i]]])
            cache[key] = float(mcnemar(table, exact=True).pvalue)
        p[i] = cache[key]
    return {"only_trainee": only_t, "only_other": only_o, "p_value": p}
