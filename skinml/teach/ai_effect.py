"""What AI support changed: each trainee's unaided and aided answers on the same cases.

The design is paired (Tschandl et al., Nat Med 2020): every case is answered
first without the AI, then with its probabilities and heatmap. So every
comparison is within trainee and within case:

* accuracy, malignant sensitivity (a malignant case called any malignant
  diagnosis) and Cohen's κ with the key, unaided vs aided, with an exact
  McNemar test on the discordant cases and a paired bootstrap interval of the
  difference (both answers resampled with the same case draws);
* answers changed toward the correct diagnosis and toward an incorrect one;
* reliance on the AI, where the unaided answer differed from the AI's:
  **over-reliance** = switched to the AI's answer when the AI was wrong,
  **under-reliance** = kept one's own answer when the AI was right;
* accuracy on the cases the AI got right and on those it got wrong, which is
  where faulty advice shows (it misled readers of every level in Tschandl 2020).

A cohort (or an experience band) is summarised by the mean over trainees, with
a two-way bootstrap (trainees and cases resampled together), because the
trainees are a sample too. Blank answers count as wrong, as everywhere in scoring.
All functions are pure: arrays in, arrays out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from skinml.teach.answers import NO_ANSWER
from skinml.teach.scoring import case_weights, kappa_resamples, kappa_with_ci, wilson_interval

LEVEL = 0.95
#: Years of training -> band, half-open [low, high).
EXPERIENCE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, 1.0, "< 1 year"),
    (1.0, 3.0, "1 to < 3 years"),
    (3.0, 6.0, "3 to < 6 years"),
    (6.0, float("inf"), "6 years or more"),
)
NOT_GIVEN = "not given"


@dataclass(frozen=True)
class PairedMetric:
    """One measure per sheet, unaided and aided, and what resampling says of the change.

    Attributes:
        unaided / aided: (S,) the measure on the full set of cases.
        diff_low / diff_high: (S,) paired percentile-bootstrap interval of aided - unaided.
        p_value: (S,) exact McNemar test on the discordant cases (NaN for κ).
        boot_unaided / boot_aided: (S, B) the measure under each shared case resample.
    """

    unaided: np.ndarray
    aided: np.ndarray
    diff_low: np.ndarray
    diff_high: np.ndarray
    p_value: np.ndarray
    boot_unaided: np.ndarray = field(repr=False)
    boot_aided: np.ndarray = field(repr=False)

    @property
    def diff(self) -> np.ndarray:
        return self.aided - self.unaided


def mcnemar_paired(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Exact McNemar p-value per row of two paired (S, N) right/wrong matrices."""
    from statsmodels.stats.contingency_tables import mcnemar

    only_first = (first & ~second).sum(axis=1)
    only_second = (~first & second).sum(axis=1)
    p = np.empty(len(first))
    cache: dict[tuple[int, int], float] = {}
    for i, (b, c) in enumerate(zip(only_first.tolist(), only_second.tolist(), strict=True)):
        key = (min(b, c), max(b, c))
        if key not in cache:
            cache[key] = float(mcnemar(np.array([[0, b], [c, 0]]), exact=True).pvalue)
        p[i] = cache[key]
    return p


def _diff_interval(boot_u: np.ndarray, boot_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of aided - unaided per row; NaN when over half the resamples are."""
    d = boot_a - boot_u
    lo = np.full(len(d), np.nan)
    hi = np.full(len(d), np.nan)
    if d.shape[1] < 2:  # no resampling asked for (n_bootstrap=0)
        return lo, hi
    alpha = (1.0 - LEVEL) / 2.0
    enough = np.isfinite(d).sum(axis=1) >= d.shape[1] / 2
    if enough.any():
        q = np.nanquantile(d[enough], [alpha, 1.0 - alpha], axis=1)
        lo[enough], hi[enough] = q[0], q[1]
    return lo, hi


def paired_proportion(
    unaided_hit: np.ndarray, aided_hit: np.ndarray, weights: np.ndarray, mask: np.ndarray
) -> PairedMetric:
    """A proportion over the cases in ``mask`` (e.g. malignant ones), unaided vs aided.

    Args:
        unaided_hit / aided_hit: (S, N) bool, the event per sheet and case.
        weights: (B, N) shared case resamples (:func:`skinml.teach.scoring.case_weights`).
        mask: (N,) which cases form the denominator.
    """
    u, a = unaided_hit[:, mask], aided_hit[:, mask]
    n = int(mask.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        point_u = u.sum(axis=1) / n if n else np.full(len(u), np.nan)
        point_a = a.sum(axis=1) / n if n else np.full(len(a), np.nan)
        w = weights[:, mask]
        den = w.sum(axis=1)  # (B,)
        boot_u = (w @ u.T.astype(float)).T / den
        boot_a = (w @ a.T.astype(float)).T / den
    lo, hi = _diff_interval(boot_u, boot_a)
    p = mcnemar_paired(u, a) if n else np.full(len(u), np.nan)
    return PairedMetric(point_u, point_a, lo, hi, p, boot_u, boot_a)


def paired_kappa(
    unaided: np.ndarray, aided: np.ndarray, reference: np.ndarray, n_classes: int, weights
) -> PairedMetric:
    """Cohen's κ with the key, unaided vs aided (unanswered = its own category)."""
    k_u = kappa_with_ci(unaided, reference, n_classes, n_bootstrap=0)[0]
    k_a = kappa_with_ci(aided, reference, n_classes, n_bootstrap=0)[0]
    boot_u = kappa_resamples(unaided, reference, n_classes, weights)
    boot_a = kappa_resamples(aided, reference, n_classes, weights)
    lo, hi = _diff_interval(boot_u, boot_a)
    return PairedMetric(k_u, k_a, lo, hi, np.full(len(k_u), np.nan), boot_u, boot_a)


def answer_changes(
    unaided: np.ndarray, aided: np.ndarray, reference: np.ndarray
) -> dict[str, np.ndarray]:
    """Per sheet: how many answers changed, toward correct, toward incorrect, wrong to wrong."""
    u_ok = unaided == reference[None, :]
    a_ok = aided == reference[None, :]
    changed = unaided != aided
    return {
        "n_changed": changed.sum(axis=1),
        "n_changed_to_correct": (~u_ok & a_ok).sum(axis=1),
        "n_changed_to_incorrect": (u_ok & ~a_ok).sum(axis=1),
        "n_changed_wrong_to_wrong": (changed & ~u_ok & ~a_ok).sum(axis=1),
    }


def reliance(
    unaided: np.ndarray, aided: np.ndarray, ai: np.ndarray, reference: np.ndarray
) -> dict[str, np.ndarray]:
    """Over- and under-reliance counts per sheet, on the cases where the trainee and AI differed.

    Only cases where the AI answered and the unaided answer was not the AI's are
    opportunities: there the final answer either follows the AI or does not.
    """
    ai_answered = ai != NO_ANSWER
    ai_right = ai_answered & (ai == reference)
    ai_wrong = ai_answered & ~ai_right
    differ = unaided != ai[None, :]
    follows = aided == ai[None, :]
    wrong_opp = differ & ai_wrong[None, :]
    right_opp = differ & ai_right[None, :]
    return {
        "n_ai_wrong_disagreed": wrong_opp.sum(axis=1),
        "n_followed_wrong_ai": (wrong_opp & follows).sum(axis=1),
        "n_ai_right_disagreed": right_opp.sum(axis=1),
        "n_overrode_right_ai": (right_opp & ~follows).sum(axis=1),
    }


def malignant_calls(codes: np.ndarray, malignant_mask: np.ndarray) -> np.ndarray:
    """(S, N) bool: the answer is a malignant diagnosis (blank = not malignant)."""
    answered = codes != NO_ANSWER
    return answered & malignant_mask[np.where(answered, codes, 0)]


@dataclass(frozen=True)
class AiEffect:
    """What AI support changed, per AI-support sheet.

    Attributes:
        sheets: row index of each analysed sheet in the answer matrix.
        accuracy / malignant_sensitivity / kappa: paired measures.
        accuracy_ai_right / accuracy_ai_wrong: accuracy on the cases the AI got
            right / wrong (None without the AI's answers).
        changes: :func:`answer_changes` counts.
        reliance: :func:`reliance` counts (None without the AI's answers).
        n_bootstrap / seed: how the intervals were computed.
    """

    sheets: np.ndarray
    accuracy: PairedMetric
    malignant_sensitivity: PairedMetric
    kappa: PairedMetric
    accuracy_ai_right: PairedMetric | None
    accuracy_ai_wrong: PairedMetric | None
    changes: dict[str, np.ndarray]
    reliance: dict[str, np.ndarray] | None
    n_bootstrap: int
    seed: int

    def metrics(self) -> dict[str, PairedMetric]:
        """The paired measures by name (those that exist)."""
        out = {
            "accuracy": self.accuracy,
            "malignant_sensitivity": self.malignant_sensitivity,
            "kappa": self.kappa,
        }
        if self.accuracy_ai_right is not None:
            out["accuracy_where_ai_right"] = self.accuracy_ai_right
        if self.accuracy_ai_wrong is not None:
            out["accuracy_where_ai_wrong"] = self.accuracy_ai_wrong
        return out


def ai_effect(
    unaided: np.ndarray,
    aided: np.ndarray,
    reference: np.ndarray,
    malignant_mask: np.ndarray,
    ai: np.ndarray | None = None,
    *,
    sheets: Sequence[int] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> AiEffect:
    """Everything AI support changed, for sheets of unaided and aided codes.

    Args:
        unaided / aided: (S, N) codes, -1 = unanswered.
        reference: (N,) the key.
        malignant_mask: (K,) which classes are malignant.
        ai: (N,) the AI's answer per case (-1 where it gave none), if known.
        sheets: the sheets' row numbers in the answer matrix (default 0..S-1).
        n_bootstrap: shared case resamples for every interval (at least 1).
        seed: resampling seed.
    """
    unaided = np.atleast_2d(np.asarray(unaided, dtype=np.int32))
    aided = np.atleast_2d(np.asarray(aided, dtype=np.int32))
    ref = np.asarray(reference, dtype=np.int32)
    mal = np.asarray(malignant_mask, dtype=bool)
    n = len(ref)
    weights = case_weights(n, max(int(n_bootstrap), 1), seed)
    every = np.ones(n, dtype=bool)
    u_ok, a_ok = unaided == ref[None, :], aided == ref[None, :]
    right = wrong = rel = None
    if ai is not None:
        ai = np.asarray(ai, dtype=np.int32)
        ai_right = ai == ref
        right = paired_proportion(u_ok, a_ok, weights, ai_right)
        wrong = paired_proportion(u_ok, a_ok, weights, ~ai_right)
        rel = reliance(unaided, aided, ai, ref)
    return AiEffect(
        sheets=np.arange(len(unaided)) if sheets is None else np.asarray(sheets),
        accuracy=paired_proportion(u_ok, a_ok, weights, every),
        malignant_sensitivity=paired_proportion(
            malignant_calls(unaided, mal), malignant_calls(aided, mal), weights, mal[ref]
        ),
        kappa=paired_kappa(unaided, aided, ref, len(mal), weights),
        accuracy_ai_right=right,
        accuracy_ai_wrong=wrong,
        changes=answer_changes(unaided, aided, ref),
        reliance=rel,
        n_bootstrap=int(n_bootstrap),
        seed=seed,
    )


def experience_band(years: np.ndarray) -> np.ndarray:
    """Band label per value of years of training (:data:`NOT_GIVEN` for NaN)."""
    y = np.asarray(years, dtype=float)
    out = np.full(len(y), NOT_GIVEN, dtype=object)
    for low, high, label in EXPERIENCE_BANDS:
        out[(y >= low) & (y < high)] = label
    return out


def group_mean_change(metric: PairedMetric, members: np.ndarray, *, seed: int = 0) -> dict:
    """Mean over trainees of unaided, aided and their difference, with a two-way bootstrap CI.

    Each resample draws trainees (with replacement) and takes the case resample
    of the same index, so the interval carries both sources of variation.
    """
    members = np.asarray(members)
    nan = float("nan")
    if len(members) == 0:
        return {"n_trainees": 0, "unaided": nan, "aided": nan, "change": nan}
    u, a = metric.unaided[members], metric.aided[members]
    out = {
        "n_trainees": len(members),
        "unaided": float(np.nanmean(u)),
        "aided": float(np.nanmean(a)),
        "change": float(np.nanmean(a - u)),
        "change_ci_low": nan,
        "change_ci_high": nan,
    }
    d = metric.boot_aided[members] - metric.boot_unaided[members]  # (m, B)
    B = d.shape[1]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(members), size=(B, len(members)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of all-NaN trainees
        boot = np.nanmean(d[pick, np.arange(B)[:, None]], axis=1)
    ok = np.isfinite(boot)
    if ok.sum() >= B / 2 and B > 1:
        alpha = (1.0 - LEVEL) / 2.0
        out["change_ci_low"], out["change_ci_high"] = (
            float(x) for x in np.quantile(boot[ok], [alpha, 1.0 - alpha])
        )
    return out


def pooled_rate(
    numerator: np.ndarray,
    denominator: np.ndarray,
    members: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Sum of events over sum of opportunities among ``members``, with a CI.

    With several trainees the interval resamples trainees (their answers are
    correlated); with one it is the Wilson interval of that trainee's counts.
    """
    members = np.asarray(members)
    num, den = numerator[members].astype(float), denominator[members].astype(float)
    k, n = float(num.sum()), float(den.sum())
    out = {"events": int(k), "opportunities": int(n), "rate": k / n if n else float("nan")}
    if len(members) < 2 or n == 0:
        lo, hi = wilson_interval(np.array(k), np.array(n))
        out["ci_low"], out["ci_high"] = float(lo), float(hi)
        return out
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(members), size=(max(n_bootstrap, 1), len(members)))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = num[pick].sum(axis=1) / den[pick].sum(axis=1)
    boot = boot[np.isfinite(boot)]
    alpha = (1.0 - LEVEL) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha]) if len(boot) else (np.nan, np.nan)
    out["ci_low"], out["ci_high"] = float(lo), float(hi)
    return out
