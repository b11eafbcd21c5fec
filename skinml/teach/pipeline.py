"""``skinml-teach score`` as a library call: read, check, score, write tables and reports."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.teach.ai_answers import read_ai_answers
from skinml.teach.answers import read_answers
from skinml.teach.benchmarks import comparable_levels, find_reader_scores, load_reader_scores
from skinml.teach.cohort import MIN_TRAINEES_FOR_PERCENTILE
from skinml.teach.reference import read_reference
from skinml.teach.results import TeachingScores, score_teaching_set

REPORT_CHOICES = ("latest", "all", "none")


@dataclass(frozen=True)
class ScoringOutput:
    """What ``score_session`` wrote, and the scores themselves."""

    scores: TeachingScores
    summary_csv: Path
    sessions_csv: Path
    per_diagnosis_csv: Path
    missed_csv: Path
    cohort_json: Path
    reports: dict[str, Path]
    ai_effect_csv: Path | None = None
    ai_effect_groups_csv: Path | None = None
    ai_support_html: Path | None = None
    ai_effect_groups: pd.DataFrame | None = None


def safe_name(text: str) -> str:
    """A file-name-safe version of a trainee name (letters, digits, ``-_.``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned or "trainee"


def score_session(
    reference: str | PathLike[str],
    answers: Sequence[str | PathLike[str]],
    out: str | PathLike[str],
    *,
    ai: str | PathLike[str] | None = None,
    images: str | PathLike[str] | None = None,
    reader_scores: str | PathLike[str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    reports: str = "latest",
    note: str = "",
    progress: bool = True,
) -> ScoringOutput:
    """Score answer sheets against a teaching set's key and write everything.

    Args:
        reference: ``reference.csv`` of the teaching set.
        answers: answer CSVs (one per trainee, or long with a ``trainee`` column).
        out: report folder.
        ai: ``ai_answers.csv`` (default: the one beside the reference, if any).
        images: case images for the report (default: ``cases/`` beside the reference).
        reader_scores: the TODIV folder (default: found via ``$SKINML_SHARED_DATA``).
        n_bootstrap: resamples for κ intervals.
        seed: bootstrap seed.
        reports: ``latest`` (one HTML per trainee, their latest session),
            ``all`` (one per sheet) or ``none``.
        note: a line printed at the top of every report (e.g. "SIMULATED trainees").
        progress: show a progress bar while writing reports.

    Outputs in ``out``: ``summary.csv`` (one row per trainee, latest session),
    ``sessions.csv`` (one row per trainee x session), ``per_diagnosis.csv``,
    ``missed_malignancies.csv``, ``cohort.json`` and ``report_<trainee>.html``; when some
    sheets were taken in the quiz's AI-support mode also ``ai_effect.csv`` (one row per such
    sheet: unaided vs aided), ``ai_effect_by_experience.csv`` (the cohort, then each band of
    years of training) and ``ai_support.html`` (the instructor's page).
    """
    if reports not in REPORT_CHOICES:
        raise ValueError(f"reports={reports!r}; expected one of {REPORT_CHOICES}")
    ref = read_reference(reference)
    matrix = read_answers(list(answers), ref)
    if ai is None and (Path(reference).parent / "ai_answers.csv").is_file():
        ai = Path(reference).parent / "ai_answers.csv"
    ai_answers = None if ai is None else read_ai_answers(ai, ref)
    res = score_teaching_set(ref, matrix, ai_answers, n_bootstrap=n_bootstrap, seed=seed)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sessions = res.summary()
    sessions.to_csv(out / "sessions.csv", index=False)
    summary = sessions.iloc[res.latest].drop(columns="is_latest_session")
    summary.to_csv(out / "summary.csv", index=False)
    res.per_diagnosis().to_csv(out / "per_diagnosis.csv", index=False)
    res.all_missed().to_csv(out / "missed_malignancies.csv", index=False)
    cohort = {
        "reference": str(reference),
        "n_cases": len(ref.cases),
        "n_trainees": len(res.latest),
        "n_sheets": len(sessions),
        "agreement_latest_sessions": res.agreement.as_dict(),
        "accuracy_latest_sessions": _describe(res.scores.accuracy[res.latest]),
        "ai": None
        if res.ai_scores is None
        else {
            "source": str(ai),
            "accuracy": float(res.ai_scores.accuracy[0]),
            "balanced_accuracy": float(res.ai_scores.balanced_accuracy[0]),
            "malignant_sensitivity": float(res.ai_scores.malignant_sensitivity[0]),
            "malignant_specificity": float(res.ai_scores.malignant_specificity[0]),
            "kappa": float(res.ai_scores.kappa[0]),
            "cases_without_answer": list(res.ai.missing),
        },
        "percentiles_shown": bool(len(res.latest) >= MIN_TRAINEES_FOR_PERCENTILE),
        "reference_levels": comparable_levels(ref.classes).reason,
        "ai_support": None,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "note": note,
    }
    effect_csv = groups_csv = ai_html = groups = None
    if res.ai_effect is not None:
        from skinml.teach.ai_support import cohort_json, group_table, per_sheet_table
        from skinml.teach.report_ai import cohort_ai_report

        per_sheet = per_sheet_table(res.ai_effect, res.answers)
        groups = group_table(res.ai_effect, res.answers, seed=seed)
        effect_csv, groups_csv = out / "ai_effect.csv", out / "ai_effect_by_experience.csv"
        per_sheet.to_csv(effect_csv, index=False)
        groups.to_csv(groups_csv, index=False)
        cohort["ai_support"] = cohort_json(groups)
        if reports != "none":
            ai_html = cohort_ai_report(res, groups, per_sheet, note=note).write(
                out / "ai_support.html"
            )
    (out / "cohort.json").write_text(json.dumps(cohort, indent=2), encoding="utf-8")

    written: dict[str, Path] = {}
    if reports != "none":
        from skinml.teach.report import trainee_report

        folder = find_reader_scores(reader_scores)
        readers = None if folder is None else load_reader_scores(folder)
        sheets = res.latest if reports == "latest" else np.arange(len(sessions))
        iterator = sheets
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(sheets, desc="writing trainee reports", unit="report")
        for i in iterator:
            trainee = str(sessions["trainee"].iloc[i])
            session = str(sessions["session"].iloc[i])
            name = safe_name(trainee) + (
                "" if reports == "latest" or not session else f"_{safe_name(session)}"
            )
            path = out / f"report_{name}.html"
            k = 2
            while path in written.values():
                path = out / f"report_{name}_{k}.html"
                k += 1
            trainee_report(res, int(i), images_dir=images, reader_scores=readers, note=note).write(
                path
            )
            written[f"{trainee}|{session}"] = path
    return ScoringOutput(
        res,
        out / "summary.csv",
        out / "sessions.csv",
        out / "per_diagnosis.csv",
        out / "missed_malignancies.csv",
        out / "cohort.json",
        written,
        effect_csv,
        groups_csv,
        ai_html,
        groups,
    )


def _describe(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {}
    q = np.quantile(x, [0.25, 0.5, 0.75])
    return {
        "mean": float(np.mean(x)),
        "q25": float(q[0]),
        "median": float(q[1]),
        "q75": float(q[2]),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
    }
