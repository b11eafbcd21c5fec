"""The extra columns of a quiz export, read and checked cell by cell.

``quiz.html`` exports the long answer format ``skinml-teach score`` has always
read (``trainee, session, case, diagnosis, confidence``) plus the columns in
:data:`QUIZ_COLUMNS`. The quiz writes its header from that tuple, so the writer
and this reader cannot drift apart. Every cell a person could have edited into
nonsense is checked here, and each problem names the file, row and column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError

#: Column order of a quiz export (``diagnosis``/``confidence`` are the scored, final answer).
QUIZ_COLUMNS = (
    "set_fingerprint",
    "quiz_mode",
    "trainee",
    "years_training",
    "session",
    "case",
    "diagnosis",
    "confidence",
    "unaided_diagnosis",
    "unaided_confidence",
    "aided_diagnosis",
    "aided_confidence",
    "seconds",
    "unaided_seconds",
    "aided_seconds",
)
PLAIN, AI_SUPPORT = "plain", "ai_support"
QUIZ_MODES = (PLAIN, AI_SUPPORT)
#: No resident has trained longer; a larger number is a typing error.
MAX_YEARS_TRAINING = 60.0
#: A day: a timer beyond this was edited, or the quiz was left open.
MAX_SECONDS = 86_400.0


def numbers(
    frame: pd.DataFrame,
    column: str,
    path: Path,
    rows: np.ndarray,
    *,
    high: float,
    expected: str,
) -> tuple[np.ndarray, list[DataError]]:
    """A column of optional non-negative numbers (NaN where blank or absent)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan), []
    text = frame[column].str.strip()
    num = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=float, copy=True)
    bad = (text != "").to_numpy() & (~np.isfinite(num) | (num < 0) | (num > high))
    problems = [
        DataError(
            f"{column} {text.iloc[i]!r} is not a valid value",
            file=path,
            row=int(rows[i]),
            column=column,
            expected=expected,
            fix="export the answers again from the quiz, or blank the cell",
        )
        for i in np.flatnonzero(bad)
    ]
    num[bad] = np.nan
    return num, problems


def modes(frame: pd.DataFrame, path: Path, rows: np.ndarray) -> tuple[np.ndarray, list[DataError]]:
    """Per row ``quiz_mode``: 1.0 AI support, 0.0 plain, NaN blank or absent.

    Where the mode is not given, an unaided answer in the sheet marks it as AI support.
    """
    if "quiz_mode" not in frame.columns:
        return np.full(len(frame), np.nan), []
    text = frame["quiz_mode"].str.strip().str.lower()
    bad = ~text.isin([*QUIZ_MODES, ""]).to_numpy()
    problems = [
        DataError(
            f"quiz_mode {frame['quiz_mode'].iloc[i]!r} is not a quiz mode",
            file=path,
            row=int(rows[i]),
            column="quiz_mode",
            expected=f"one of {list(QUIZ_MODES)}",
        )
        for i in np.flatnonzero(bad)
    ]
    mode = np.where(text == AI_SUPPORT, 1.0, np.where(text == PLAIN, 0.0, np.nan))
    return mode, problems


def fingerprint_problems(
    frame: pd.DataFrame, path: Path, rows: np.ndarray, expected: str | None
) -> list[DataError]:
    """One error for a file taken on another teaching set (its first mismatching row)."""
    if "set_fingerprint" not in frame.columns or expected is None:
        return []
    text = frame["set_fingerprint"].str.strip()
    wrong = ((text != "") & (text != expected)).to_numpy()
    if not wrong.any():
        return []
    i = int(np.flatnonzero(wrong)[0])
    return [
        DataError(
            f"these answers were given on another teaching set (set_fingerprint "
            f"{text.iloc[i]!r}; this reference's set is {expected!r}); "
            f"{int(wrong.sum())} rows are affected",
            file=path,
            row=int(rows[i]),
            column="set_fingerprint",
            fix="score the file against the reference.csv of the set whose quiz.html the "
            "trainee took (teaching_set.json 'fingerprint' names each set)",
        )
    ]


def per_sheet_constant(
    table: pd.DataFrame, column: str, what: str, names: dict | None = None
) -> list[DataError]:
    """Errors where one sheet (trainee x session) has two values of a per-sheet column.

    Blank cells (NaN) are ignored; ``names`` shows a value as text (``1.0`` -> ``ai_support``).
    """
    problems: list[DataError] = []
    given = table[np.isfinite(table[column].to_numpy(dtype=float))]
    for (trainee, session), grp in given.groupby(["trainee", "session"], sort=False):
        values = grp[column].unique()
        if len(values) > 1:
            first = grp[grp[column] != grp[column].iloc[0]].iloc[0]
            shown = names or {}
            a, b = grp[column].iloc[0].item(), first[column].item()
            problems.append(
                DataError(
                    f"trainee {trainee!r}"
                    + (f" in session {session!r}" if session else "")
                    + f" has {what} {shown.get(a, f'{a:g}')!r} in row "
                    f"{int(grp['row'].iloc[0])} but {shown.get(b, f'{b:g}')!r} here",
                    file=first["file"],
                    row=int(first["row"]),
                    column=column,
                    fix=f"one quiz session has one {what}; export the answers again from the "
                    "quiz, or correct the cell",
                )
            )
    return problems
