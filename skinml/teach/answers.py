"""Trainee answer sheets -> one checked, dense answer matrix (sheets x cases).

Answers arrive as one CSV per trainee (the trainee is the file name) or as one
long CSV with a ``trainee`` column, optionally with ``confidence`` and
``session`` (e.g. the date of the session). Every problem in every file is
collected and reported at once; a case that a trainee did not answer stays in
the matrix as *unanswered* (code -1) and is scored as wrong, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError, ManyErrors
from skinml.teach.reference import Reference
from skinml.teach.vocabulary import UNANSWERED, normalise_diagnoses
from skinml.textfiles import not_utf8

#: Code for "no answer" in an answer matrix.
NO_ANSWER = -1


@dataclass(frozen=True)
class AnswerMatrix:
    """Every answer sheet as one row of a dense matrix aligned to the reference.

    Attributes:
        sheets: one row per (trainee, session): ``trainee``, ``session``, ``file``.
        codes: int16 array (n_sheets, n_cases), index into ``reference.classes``
            or :data:`NO_ANSWER`.
        confidence: float array (n_sheets, n_cases) in [0, 1]; NaN where not given.
        synonyms: per file, the synonym mappings applied (``{"Melanoma": "mel"}``).
    """

    sheets: pd.DataFrame
    codes: np.ndarray
    confidence: np.ndarray
    synonyms: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def answered(self) -> np.ndarray:
        return self.codes != NO_ANSWER


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError("answer file does not exist", file=path, fix="check the path")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(
            f"cannot parse CSV: {exc}",
            file=path,
            expected="a UTF-8 comma-separated file with a header row",
        ) from exc
    frame.columns = [str(c).strip().lstrip("\ufeff").lower() for c in frame.columns]
    return frame


def _confidence(values: pd.Series, path: Path, rows: np.ndarray) -> tuple[np.ndarray, list]:
    text = values.str.strip()
    num = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=float)
    problems = []
    bad = (text != "").to_numpy() & np.isnan(num)
    for i in np.flatnonzero(bad):
        problems.append(
            DataError(
                f"confidence {text.iloc[i]!r} is not a number",
                file=path,
                row=int(rows[i]),
                column="confidence",
                expected="a number from 0 to 1, or a percentage 0-100",
            )
        )
    scale = 100.0 if np.nanmax(num, initial=0.0) > 1.0 else 1.0
    out_of_range = (num < 0) | (num > 100)
    for i in np.flatnonzero(out_of_range):
        problems.append(
            DataError(
                f"confidence {text.iloc[i]!r} is out of range",
                file=path,
                row=int(rows[i]),
                column="confidence",
                expected="a number from 0 to 1, or a percentage 0-100",
            )
        )
    return num / scale, problems


def _long_table(path: Path, reference: Reference) -> tuple[pd.DataFrame, list, dict]:
    """One file -> rows (trainee, session, case index, code, confidence, file, row)."""
    frame = _read_csv(path)
    missing = [c for c in ("case", "diagnosis") if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing columns {missing}; found {list(frame.columns)}",
            file=path,
            expected="columns case, diagnosis and optionally confidence, trainee, session",
            fix="start from the answer_sheet.csv written by `skinml-teach build`",
        )
    rows = np.arange(len(frame)) + 2
    case = frame["case"].str.strip()
    diag = frame["diagnosis"]
    others = [c for c in frame.columns if c not in ("case", "diagnosis")]
    empty_row = (case == "") & (diag.str.strip() == "")
    if others:
        empty_row &= (frame[others].apply(lambda s: s.str.strip()) == "").all(axis=1)
    keep = ~empty_row.to_numpy()
    frame, case, diag, rows = frame[keep], case[keep], diag[keep], rows[keep]
    problems: list[DataError] = []
    index = reference.case_index
    case_idx = case.str.lower().map(index)
    for i in np.flatnonzero(case_idx.isna().to_numpy()):
        value = case.iloc[i]
        problem = "empty case ID" if value == "" else f"unknown case ID {value!r}"
        problems.append(
            DataError(
                problem,
                file=path,
                row=int(rows[i]),
                column="case",
                expected=f"one of the reference cases ({reference.cases[0]}"
                f" ... {reference.cases[-1]})",
                fix="check the case column against the answer sheet",
            )
        )
    try:
        codes, applied = normalise_diagnoses(diag, reference.classes, file=path, row_numbers=rows)
    except ManyErrors as exc:
        problems.extend(exc.errors)
        codes, applied = pd.Series([UNANSWERED] * len(diag), index=diag.index), {}
    if "trainee" in frame.columns:
        trainee = frame["trainee"].str.strip()
        for i in np.flatnonzero((trainee == "").to_numpy()):
            problems.append(
                DataError(
                    "empty trainee name",
                    file=path,
                    row=int(rows[i]),
                    column="trainee",
                    fix="fill in who answered this row",
                )
            )
    else:
        trainee = pd.Series(path.stem, index=frame.index)
    session = frame["session"].str.strip() if "session" in frame.columns else ""
    if "confidence" in frame.columns:
        conf, conf_problems = _confidence(frame["confidence"], path, rows)
        problems.extend(conf_problems)
    else:
        conf = np.full(len(frame), np.nan)
    class_index = {c: i for i, c in enumerate(reference.classes)}
    long = pd.DataFrame(
        {
            "trainee": trainee.to_numpy(),
            "session": session if isinstance(session, str) else session.to_numpy(),
            "case_idx": case_idx.fillna(-1).astype(int).to_numpy(),
            "code": codes.map(class_index).fillna(NO_ANSWER).astype(np.int16).to_numpy(),
            "confidence": conf,
            "file": str(path),
            "row": rows,
        }
    )
    return long, problems, applied


def read_answers(paths: Sequence[str | PathLike[str]], reference: Reference) -> AnswerMatrix:
    """Read answer CSVs and align them to the reference.

    Args:
        paths: one CSV per trainee, or long CSVs with a ``trainee`` column
            (both may be mixed).
        reference: the key the answers are scored against.

    Returns:
        The answer matrix, one row per (trainee, session) in first-seen order.

    Raises:
        ManyErrors: every unknown case ID, unknown diagnosis, bad confidence and
            duplicate answer in all files, each with file, row and value.
    """
    if not paths:
        raise DataError("no answer files given", fix="pass at least one --answers CSV")
    parts, problems, synonyms = [], [], {}
    for p in paths:
        long, file_problems, applied = _long_table(Path(p), reference)
        parts.append(long)
        problems.extend(file_problems)
        if applied:
            synonyms[str(p)] = applied
    table = pd.concat(parts, ignore_index=True)
    valid = table["case_idx"] >= 0
    dup = table[valid].duplicated(["trainee", "session", "case_idx"], keep=False)
    dups = table[valid][dup]
    for (trainee, session, case_idx), grp in dups.groupby(["trainee", "session", "case_idx"]):
        where = "; ".join(f"{f} row {r}" for f, r in zip(grp["file"], grp["row"], strict=True))
        sess = f" in session {session!r}" if session else ""
        problems.append(
            DataError(
                f"trainee {trainee!r}{sess} answered case {reference.cases[case_idx]!r} "
                f"{len(grp)} times ({where})",
                file=grp["file"].iloc[0],
                row=int(grp["row"].iloc[0]),
                column="case",
                fix="keep one answer per case and trainee (a session column marks repeats)",
            )
        )
    if problems:
        raise ManyErrors(
            "answer files cannot be scored",
            problems,
            fix="correct the rows listed above; nothing was scored",
        )
    sheets = (
        table[["trainee", "session", "file"]]
        .drop_duplicates(["trainee", "session"])
        .reset_index(drop=True)
    )
    sheet_id = pd.MultiIndex.from_frame(sheets[["trainee", "session"]])
    rows = sheet_id.get_indexer(pd.MultiIndex.from_frame(table[["trainee", "session"]]))
    n_cases = len(reference.cases)
    codes = np.full((len(sheets), n_cases), NO_ANSWER, dtype=np.int16)
    conf = np.full((len(sheets), n_cases), np.nan)
    codes[rows, table["case_idx"].to_numpy()] = table["code"].to_numpy()
    conf[rows, table["case_idx"].to_numpy()] = table["confidence"].to_numpy()
    conf[codes == NO_ANSWER] = np.nan
    return AnswerMatrix(sheets=sheets, codes=codes, confidence=conf, synonyms=synonyms)
