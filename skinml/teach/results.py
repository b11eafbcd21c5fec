"""All scores of one teaching session: trainees, the AI and the cohort, as tables.

:func:`score_teaching_set` runs the vectorised core once for every sheet and
once for the AI, then this module turns the arrays into the tables people
read: one summary row per sheet, per-diagnosis rows, and the missed
malignancies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinml.teach.ai_answers import AiAnswers
from skinml.teach.ai_effect import AiEffect
from skinml.teach.ai_support import compute_ai_effect, per_sheet_table
from skinml.teach.answers import NO_ANSWER, AnswerMatrix
from skinml.teach.cohort import (
    MIN_TRAINEES_FOR_PERCENTILE,
    CohortAgreement,
    cohort_agreement,
    latest_sessions,
    percentile_of,
)
from skinml.teach.reference import Reference
from skinml.teach.scoring import ScoreArrays, kappa_with_ci, mcnemar_vs, score_answers


@dataclass(frozen=True)
class TeachingScores:
    """Scores for every sheet, the AI's scores on the same cases, and cohort statistics.

    Attributes:
        reference: the key.
        answers: the answer matrix.
        scores: per-sheet arrays.
        ai: the AI's answers (None when not given).
        ai_scores: the AI scored like a trainee (one row).
        ai_kappa / ai_kappa_low / ai_kappa_high: each sheet's κ with the AI.
        vs_ai: McNemar counts and p-value per sheet, trainee vs AI.
        latest: row index of each trainee's latest sheet (the cohort).
        percentile: each sheet's accuracy percentile among the cohort's latest sheets
            (NaN for a cohort under :data:`MIN_TRAINEES_FOR_PERCENTILE` trainees).
        agreement: agreement among the cohort's latest sheets.
        ai_effect: unaided vs aided answers of the AI-support sheets (None when none).
        n_bootstrap / seed: how the κ intervals were computed.
    """

    reference: Reference
    answers: AnswerMatrix
    scores: ScoreArrays
    ai: AiAnswers | None
    ai_scores: ScoreArrays | None
    ai_kappa: np.ndarray | None
    ai_kappa_low: np.ndarray | None
    ai_kappa_high: np.ndarray | None
    vs_ai: dict[str, np.ndarray] | None
    latest: np.ndarray
    percentile: np.ndarray
    agreement: CohortAgreement
    n_bootstrap: int
    seed: int
    ai_effect: AiEffect | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.reference.classes

    def summary(self) -> pd.DataFrame:
        """One row per sheet (trainee x session): the instructor's table."""
        s = self.scores
        sheets = self.answers.sheets
        frame = pd.DataFrame(
            {
                "trainee": sheets["trainee"],
                "session": sheets["session"],
                "n_cases": len(self.reference.cases),
                "n_answered": len(self.reference.cases) - s.n_unanswered,
                "n_unanswered": s.n_unanswered,
                "n_correct": s.n_correct,
                "accuracy": s.accuracy,
                "accuracy_ci_low": s.accuracy_low,
                "accuracy_ci_high": s.accuracy_high,
                "balanced_accuracy": s.balanced_accuracy,
                "malignant_sensitivity": s.malignant_sensitivity,
                "malignant_sensitivity_ci_low": s.malignant_sensitivity_low,
                "malignant_sensitivity_ci_high": s.malignant_sensitivity_high,
                "malignant_specificity": s.malignant_specificity,
                "malignant_specificity_ci_low": s.malignant_specificity_low,
                "malignant_specificity_ci_high": s.malignant_specificity_high,
                "n_malignant_cases": s.n_malignant,
                "n_missed_malignant": s.missed_malignant.sum(axis=1),
                "missed_malignant_cases": [
                    " ".join(np.asarray(self.reference.cases)[row]) for row in s.missed_malignant
                ],
                "kappa": s.kappa,
                "kappa_ci_low": s.kappa_low,
                "kappa_ci_high": s.kappa_high,
            }
        )
        for k, c in enumerate(self.classes):
            if s.class_counts[k] > 0:
                frame[f"sensitivity_{c}"] = s.sensitivity[:, k]
        for k, c in enumerate(self.classes):
            if s.class_counts[k] > 0:
                frame[f"specificity_{c}"] = s.specificity[:, k]
        conf = self.answers.confidence
        correct = s.correct
        with np.errstate(invalid="ignore"):
            frame["mean_confidence_correct"] = _nanmean_rows(np.where(correct, conf, np.nan))
            frame["mean_confidence_wrong"] = _nanmean_rows(np.where(~correct, conf, np.nan))
        frame["cohort_percentile"] = self.percentile
        frame["is_latest_session"] = np.isin(np.arange(len(sheets)), self.latest)
        if self.ai_scores is not None:
            a = self.ai_scores
            frame["kappa_with_ai"] = self.ai_kappa
            frame["kappa_with_ai_ci_low"] = self.ai_kappa_low
            frame["kappa_with_ai_ci_high"] = self.ai_kappa_high
            frame["ai_accuracy"] = float(a.accuracy[0])
            frame["ai_malignant_sensitivity"] = float(a.malignant_sensitivity[0])
            frame["ai_malignant_specificity"] = float(a.malignant_specificity[0])
            frame["n_right_where_ai_wrong"] = self.vs_ai["only_trainee"]
            frame["n_wrong_where_ai_right"] = self.vs_ai["only_other"]
            frame["mcnemar_p_vs_ai"] = self.vs_ai["p_value"]
        frame["years_training"] = sheets["years_training"].to_numpy(dtype=float)
        frame["ai_support"] = self.answers.ai_support
        if self.ai_effect is not None:
            frame = self._with_ai_effect(frame)
        return frame

    def _with_ai_effect(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The headline AI-support columns on the AI-support sheets' rows (blank elsewhere)."""
        table = per_sheet_table(self.ai_effect, self.answers)
        keep = [
            "unaided_accuracy",
            "aided_accuracy",
            "accuracy_change_ci_low",
            "accuracy_change_ci_high",
            "accuracy_mcnemar_p",
            "unaided_malignant_sensitivity",
            "aided_malignant_sensitivity",
            "unaided_kappa",
            "aided_kappa",
            "n_changed_to_correct",
            "n_changed_to_incorrect",
            "n_followed_wrong_ai",
            "n_overrode_right_ai",
            "median_seconds_unaided",
            "median_seconds_aided",
        ]
        keep = [c for c in keep if c in table.columns]
        extra = pd.DataFrame(np.nan, index=frame.index, columns=keep)
        extra.iloc[self.ai_effect.sheets] = table[keep].to_numpy(dtype=float)
        return pd.concat([frame, extra], axis=1)

    def per_diagnosis(self, sheet: int | None = None) -> pd.DataFrame:
        """Per-diagnosis rows, with the AI and the cohort median beside each.

        Args:
            sheet: one sheet's rows; None for every sheet (with trainee and session
                columns), computed in one vectorised pass.
        """
        s = self.scores
        sheets = np.arange(len(s.accuracy)) if sheet is None else np.array([sheet])
        present = np.flatnonzero(s.class_counts > 0)
        S, P = len(sheets), len(present)
        conf = s.confusion[sheets][:, present]  # (S, P, K+1)
        hits = conf[:, np.arange(P), present]
        off = conf.copy()
        off[:, np.arange(P), present] = 0
        top = off.argmax(axis=2)
        top_n = np.take_along_axis(off, top[:, :, None], axis=2)[:, :, 0]
        names = np.array([*self.classes, "blank"], dtype=object)
        confused = np.where(top_n > 0, names[top], "")
        if len(self.latest):
            cohort = np.nanmedian(s.sensitivity[self.latest][:, present], axis=0)
        else:
            cohort = np.full(P, np.nan)
        ai = (
            self.ai_scores.sensitivity[0, present]
            if self.ai_scores is not None
            else np.full(P, np.nan)
        )
        most = np.where(
            top_n > 0,
            [
                [f"{c} ({n}x)" for c, n in zip(rc, rn, strict=True)]
                for rc, rn in zip(confused, top_n, strict=True)
            ],
            "",
        )
        frame = pd.DataFrame(
            {
                "diagnosis": np.tile(np.array(self.classes)[present], S),
                "malignant": np.tile(self.reference.malignant_mask[present], S),
                "n_cases": np.tile(s.class_counts[present], S),
                "n_correct": hits.ravel(),
                "sensitivity": s.sensitivity[sheets][:, present].ravel(),
                "specificity": s.specificity[sheets][:, present].ravel(),
                "most_often_called_instead": most.ravel(),
                "confused_with": confused.ravel(),
                "confused_count": top_n.ravel(),
                "ai_sensitivity": np.tile(ai, S),
                "cohort_median_sensitivity": np.tile(cohort, S),
            }
        )
        if sheet is None:
            frame.insert(0, "session", np.repeat(self.answers.sheets["session"].to_numpy(), P))
            frame.insert(0, "trainee", np.repeat(self.answers.sheets["trainee"].to_numpy(), P))
        return frame

    def missed(self, sheet: int | None = None) -> pd.DataFrame:
        """Malignant cases called benign or left blank, and malignant cases of the wrong type.

        Args:
            sheet: one sheet's rows; None for every sheet (with trainee and session).
        """
        s = self.scores
        ref = self.reference
        flags = s.missed_malignant | s.wrong_malignant_type
        if sheet is not None:
            keep = np.zeros(len(flags), dtype=bool)
            keep[sheet] = True
            flags = flags & keep[:, None]
        rows, cols = np.nonzero(flags)
        codes = self.answers.codes[rows, cols]
        names = np.array([*self.classes, "unanswered"], dtype=object)
        answer = names[np.where(codes == NO_ANSWER, len(self.classes), codes)]
        ai = np.full(len(rows), "", dtype=object)
        if self.ai is not None:
            ai_codes = self.ai.codes[cols]
            ai = np.array(
                [
                    "" if c == NO_ANSWER else f"{self.classes[c]} ({p:.0%})"
                    for c, p in zip(ai_codes, self.ai.confidence[cols], strict=True)
                ],
                dtype=object,
            )
        source = (
            ref.frame["source_image"].to_numpy()[cols]
            if "source_image" in ref.frame.columns
            else np.full(len(rows), "", dtype=object)
        )
        frame = pd.DataFrame(
            {
                "case": np.array(ref.cases, dtype=object)[cols],
                "reference": np.array(ref.diagnosis, dtype=object)[cols],
                "answer": answer,
                "kind": np.where(
                    s.missed_malignant[rows, cols], "missed malignancy", "malignant, wrong type"
                ),
                "confidence": self.answers.confidence[rows, cols],
                "ai_answer": ai,
                "source_image": source,
            }
        )
        if sheet is None:
            frame.insert(0, "session", self.answers.sheets["session"].to_numpy()[rows])
            frame.insert(0, "trainee", self.answers.sheets["trainee"].to_numpy()[rows])
        return frame

    def all_missed(self) -> pd.DataFrame:
        """Missed malignancies of every sheet (long table for the instructor)."""
        return self.missed(None)


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    n = np.isfinite(x).sum(axis=1)
    total = np.nansum(x, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def score_teaching_set(
    reference: Reference,
    answers: AnswerMatrix,
    ai: AiAnswers | None = None,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> TeachingScores:
    """Score every sheet, the AI, and the cohort (latest session per trainee).

    Args:
        reference: the key.
        answers: the checked answer matrix.
        ai: the AI's answers on the same cases, if any.
        n_bootstrap: resamples for the κ intervals (0 = none).
        seed: bootstrap seed.
    """
    ref_codes = reference.codes
    mal = reference.malignant_mask
    scores = score_answers(answers.codes, ref_codes, mal, n_bootstrap=n_bootstrap, seed=seed)
    ai_scores = ai_k = ai_lo = ai_hi = vs_ai = None
    if ai is not None:
        ai_scores = score_answers(
            ai.codes[None, :], ref_codes, mal, n_bootstrap=n_bootstrap, seed=seed
        )
        ai_k, ai_lo, ai_hi = kappa_with_ci(
            answers.codes, ai.codes, len(reference.classes), n_bootstrap=n_bootstrap, seed=seed
        )
        vs_ai = mcnemar_vs(scores.correct, ai_scores.correct[0])
    latest = latest_sessions(answers.sheets)
    if len(latest) >= MIN_TRAINEES_FOR_PERCENTILE:
        percentile = percentile_of(scores.accuracy, scores.accuracy[latest])
    else:
        percentile = np.full(len(scores.accuracy), np.nan)
    agreement = cohort_agreement(answers.codes[latest])
    effect = compute_ai_effect(reference, answers, ai, n_bootstrap=n_bootstrap, seed=seed)
    return TeachingScores(
        reference=reference,
        answers=answers,
        scores=scores,
        ai=ai,
        ai_scores=ai_scores,
        ai_kappa=ai_k,
        ai_kappa_low=ai_lo,
        ai_kappa_high=ai_hi,
        vs_ai=vs_ai,
        latest=latest,
        percentile=percentile,
        agreement=agreement,
        n_bootstrap=n_bootstrap,
        seed=seed,
        ai_effect=effect,
    )
