"""The AI-support study as tables: per trainee session, per cohort, per experience band.

Glue between the answer matrix and :mod:`skinml.teach.ai_effect`: which sheets
were taken with AI support, which of them form the cohort (each trainee's
latest AI-support sheet), and the rows ``ai_effect.csv``,
``ai_effect_by_experience.csv`` and ``cohort.json`` carry.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from skinml.teach.ai_answers import AiAnswers
from skinml.teach.ai_effect import (
    EXPERIENCE_BANDS,
    NOT_GIVEN,
    AiEffect,
    PairedMetric,
    ai_effect,
    experience_band,
    group_mean_change,
    pooled_rate,
)
from skinml.teach.answers import AnswerMatrix
from skinml.teach.cohort import latest_sessions
from skinml.teach.reference import Reference

ALL_TRAINEES = "all trainees"


def compute_ai_effect(
    reference: Reference,
    answers: AnswerMatrix,
    ai: AiAnswers | None,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> AiEffect | None:
    """The paired analysis of every AI-support sheet (None when there is none)."""
    rows = np.flatnonzero(answers.ai_support)
    if len(rows) == 0:
        return None
    return ai_effect(
        answers.unaided[rows],
        answers.codes[rows],
        reference.codes,
        reference.malignant_mask,
        None if ai is None else ai.codes,
        sheets=rows,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def cohort_members(effect: AiEffect, answers: AnswerMatrix) -> np.ndarray:
    """Positions (in ``effect``) of each trainee's latest AI-support sheet."""
    sub = answers.sheets.iloc[effect.sheets].reset_index(drop=True)
    return latest_sessions(sub)


def _median_rows(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a sheet without any timing
        return np.nanmedian(x, axis=1)


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def per_sheet_table(effect: AiEffect, answers: AnswerMatrix) -> pd.DataFrame:
    """One row per AI-support sheet: every paired measure, changes, reliance and timing."""
    sheets = answers.sheets.iloc[effect.sheets]
    frame = pd.DataFrame(
        {
            "trainee": sheets["trainee"].to_numpy(),
            "session": sheets["session"].to_numpy(),
            "years_training": sheets["years_training"].to_numpy(dtype=float),
            "experience": experience_band(sheets["years_training"].to_numpy(dtype=float)),
        }
    )
    for name, m in effect.metrics().items():
        frame[f"unaided_{name}"] = m.unaided
        frame[f"aided_{name}"] = m.aided
        frame[f"{name}_change"] = m.diff
        frame[f"{name}_change_ci_low"] = m.diff_low
        frame[f"{name}_change_ci_high"] = m.diff_high
        if np.isfinite(m.p_value).any():
            frame[f"{name}_mcnemar_p"] = m.p_value
    for key, values in effect.changes.items():
        frame[key] = values
    if effect.reliance is not None:
        r = effect.reliance
        for key, values in r.items():
            frame[key] = values
        frame["over_reliance"] = _rate(r["n_followed_wrong_ai"], r["n_ai_wrong_disagreed"])
        frame["under_reliance"] = _rate(r["n_overrode_right_ai"], r["n_ai_right_disagreed"])
    rows = effect.sheets
    frame["median_seconds_unaided"] = _median_rows(answers.unaided_seconds[rows])
    frame["median_seconds_aided"] = _median_rows(answers.aided_seconds[rows])
    return frame


def _group_row(
    effect: AiEffect, members: np.ndarray, label: str, seed: int
) -> dict[str, float | int | str]:
    row: dict[str, float | int | str] = {"group": label, "n_trainees": len(members)}
    for name, m in effect.metrics().items():
        g = group_mean_change(m, members, seed=seed)
        row[f"unaided_{name}"] = g["unaided"]
        row[f"aided_{name}"] = g["aided"]
        row[f"{name}_change"] = g["change"]
        row[f"{name}_change_ci_low"] = g.get("change_ci_low", np.nan)
        row[f"{name}_change_ci_high"] = g.get("change_ci_high", np.nan)
    acc: PairedMetric = effect.accuracy
    d = acc.diff[members]
    row["n_trainees_better_with_ai"] = int((d > 0).sum())
    row["n_trainees_worse_with_ai"] = int((d < 0).sum())
    for key, values in effect.changes.items():
        row[key] = int(values[members].sum())
    if effect.reliance is not None:
        r = effect.reliance
        for name, num, den in (
            ("over_reliance", "n_followed_wrong_ai", "n_ai_wrong_disagreed"),
            ("under_reliance", "n_overrode_right_ai", "n_ai_right_disagreed"),
        ):
            pr = pooled_rate(r[num], r[den], members, n_bootstrap=effect.n_bootstrap, seed=seed)
            row[name] = pr["rate"]
            row[f"{name}_ci_low"] = pr["ci_low"]
            row[f"{name}_ci_high"] = pr["ci_high"]
            row[num] = pr["events"]
            row[den] = pr["opportunities"]
    return row


def group_table(effect: AiEffect, answers: AnswerMatrix, *, seed: int = 0) -> pd.DataFrame:
    """The cohort (latest AI-support sheet per trainee), then one row per experience band.

    Bands appear only when some trainee gave years of training; a band with no
    trainee is left out.
    """
    members = cohort_members(effect, answers)
    rows = [_group_row(effect, members, ALL_TRAINEES, seed)]
    years = answers.sheets["years_training"].to_numpy(dtype=float)[effect.sheets[members]]
    bands = experience_band(years)
    if np.isfinite(years).any():
        for label in [b[2] for b in EXPERIENCE_BANDS] + [NOT_GIVEN]:
            in_band = members[bands == label]
            if len(in_band):
                rows.append(_group_row(effect, in_band, label, seed))
    return pd.DataFrame(rows)


def cohort_json(groups: pd.DataFrame) -> dict:
    """``cohort.json``'s ``ai_support`` entry: the group rows as plain numbers."""

    def clean(v):
        if isinstance(v, float | np.floating):
            return None if not np.isfinite(v) else float(v)
        if isinstance(v, np.integer):
            return int(v)
        return v

    return {
        "what": "unaided vs aided answers of each trainee's latest AI-support session; "
        "change = aided - unaided, 95% CI by a two-way (trainee x case) bootstrap; "
        "over-reliance = switched to the AI's answer when it was wrong, under-reliance = "
        "kept one's own answer when the AI was right (both among cases where the "
        "unaided answer differed from the AI's)",
        "groups": [{k: clean(v) for k, v in rec.items()} for rec in groups.to_dict("records")],
    }
