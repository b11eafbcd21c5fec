"""Trainee answer sheets -> one checked, dense answer matrix (sheets x cases).

Answers arrive as one CSV per trainee (the trainee is the file name) or as one
long CSV with a ``trainee`` column, optionally with ``confidence`` and
``session`` (e.g. the date of the session). A quiz export (``quiz.html``) is such
a long CSV with the further columns of :data:`~skinml.teach.answer_columns.QUIZ_COLUMNS`:
the set's fingerprint, years of training, seconds per case and, in AI-support
mode, the unaided answer given before the AI was shown. Every problem in every
file is collected and reported at once; a case that a trainee did not answer
stays in the matrix as *unanswered* (code -1) and is scored as wrong, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError, ManyErrors
from skinml.teach import answer_columns as qc
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
        unaided: (n_sheets, n_cases) codes of the answer given before the AI was shown
            (AI-support sheets; :data:`NO_ANSWER` elsewhere). ``codes`` holds the final answer.
        unaided_confidence: like ``confidence``, for the unaided answer.
        seconds / unaided_seconds / aided_seconds: time per case (NaN where not recorded).

    ``sheets`` also has ``years_training`` (NaN when not given), ``ai_support`` (the
    sheet was taken in the quiz's two-step AI mode) and ``set_fingerprint``.
    """

    sheets: pd.DataFrame
    codes: np.ndarray
    confidence: np.ndarray
    synonyms: dict[str, dict[str, str]] = field(default_factory=dict)
    unaided: np.ndarray | None = None
    unaided_confidence: np.ndarray | None = None
    seconds: np.ndarray | None = None
    unaided_seconds: np.ndarray | None = None
    aided_seconds: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = self.codes.shape
        for name in ("unaided",):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(shape, NO_ANSWER, dtype=np.int16))
        for name in ("unaided_confidence", "seconds", "unaided_seconds", "aided_seconds"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(shape, np.nan))
        defaults = {"years_training": np.nan, "ai_support": False, "set_fingerprint": ""}
        missing = {k: v for k, v in defaults.items() if k not in self.sheets.columns}
        if missing:
            object.__setattr__(self, "sheets", self.sheets.assign(**missing))

    @property
    def answered(self) -> np.ndarray:
        return self.codes != NO_ANSWER

    @property
    def ai_support(self) -> np.ndarray:
        """(n_sheets,) bool: the sheet holds unaided and aided answers."""
        return self.sheets["ai_support"].to_numpy(dtype=bool)


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


def _confidence(
    values: pd.Series, path: Path, rows: np.ndarray, column: str = "confidence"
) -> tuple[np.ndarray, list]:
    text = values.str.strip()
    num = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=float)
    problems = []
    bad = (text != "").to_numpy() & np.isnan(num)
    for i in np.flatnonzero(bad):
        problems.append(
            DataError(
                f"{column} {text.iloc[i]!r} is not a number",
                file=path,
                row=int(rows[i]),
                column=column,
                expected="a number from 0 to 1, or a percentage 0-100",
            )
        )
    scale = 100.0 if np.nanmax(num, initial=0.0) > 1.0 else 1.0
    out_of_range = (num < 0) | (num > 100)
    for i in np.flatnonzero(out_of_range):
        problems.append(
            DataError(
                f"{column} {text.iloc[i]!r} is out of range",
                file=path,
                row=int(rows[i]),
                column=column,
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
    extra, extra_problems, extra_applied = _quiz_columns(frame, path, rows, reference, codes)
    problems.extend(extra_problems)
    applied.update(extra_applied)
    return pd.concat([long, extra.set_axis(long.index)], axis=1), problems, applied


def _quiz_columns(
    frame: pd.DataFrame, path: Path, rows: np.ndarray, reference: Reference, final: pd.Series
) -> tuple[pd.DataFrame, list, dict]:
    """The quiz export's extra columns, checked (all optional; absent = not recorded)."""
    problems: list[DataError] = []
    applied: dict[str, str] = {}
    class_index = {c: i for i, c in enumerate(reference.classes)}
    blank = pd.Series([UNANSWERED] * len(frame), index=frame.index)
    parsed = {}
    invalid = {
        c: np.zeros(len(frame), dtype=bool) for c in ("unaided_diagnosis", "aided_diagnosis")
    }
    for col in ("unaided_diagnosis", "aided_diagnosis"):
        if col not in frame.columns:
            parsed[col] = blank
            continue
        values = frame[col]
        try:
            parsed[col], found = normalise_diagnoses(
                values, reference.classes, file=path, column=col, row_numbers=rows
            )
        except ManyErrors as exc:  # report them, and read the other rows as they are
            problems.extend(exc.errors)
            invalid[col] = np.isin(rows, [e.row for e in exc.errors])
            parsed[col], found = normalise_diagnoses(
                values.where(~invalid[col], ""), reference.classes, file=path, column=col
            )
        applied.update(found)
    unaided, aided = parsed["unaided_diagnosis"], parsed["aided_diagnosis"]
    mode, mode_problems = qc.modes(frame, path, rows)
    problems.extend(mode_problems)
    unaided_given = (unaided != UNANSWERED).to_numpy()
    differ = (aided != UNANSWERED) & (aided != final) & ~invalid["aided_diagnosis"]
    for i in np.flatnonzero(differ.to_numpy()):
        problems.append(
            DataError(
                f"diagnosis {final.iloc[i]!r} and aided_diagnosis {aided.iloc[i]!r} differ",
                file=path,
                row=int(rows[i]),
                column="aided_diagnosis",
                expected="the scored diagnosis equal to the aided (final) answer",
                fix="export the answers again from the quiz; do not edit one of the two",
            )
        )
    for i in np.flatnonzero((mode == 0.0) & unaided_given):
        problems.append(
            DataError(
                f"an unaided answer {unaided.iloc[i]!r} in a row whose quiz_mode is plain",
                file=path,
                row=int(rows[i]),
                column="unaided_diagnosis",
                expected="unaided answers only in ai_support rows",
                fix="export the answers again from the quiz",
            )
        )
    orphan = (
        (mode == 1.0)
        & ~unaided_given
        & ~invalid["unaided_diagnosis"]
        & (final != UNANSWERED).to_numpy()
    )
    for i in np.flatnonzero(orphan):
        problems.append(
            DataError(
                "an answer after AI support without the unaided answer before it",
                file=path,
                row=int(rows[i]),
                column="unaided_diagnosis",
                expected="the unaided answer (the quiz records it before showing the AI)",
                fix="export the answers again from the quiz",
            )
        )
    if "unaided_confidence" in frame.columns:
        u_conf, conf_problems = _confidence(
            frame["unaided_confidence"], path, rows, "unaided_confidence"
        )
        problems.extend(conf_problems)
    else:
        u_conf = np.full(len(frame), np.nan)
    out = {
        "quiz_mode": mode,
        "unaided_given": unaided_given,
        "unaided_code": unaided.map(class_index).fillna(NO_ANSWER).astype(np.int16).to_numpy(),
        "unaided_confidence": u_conf,
    }
    for col in ("seconds", "unaided_seconds", "aided_seconds"):
        out[col], col_problems = qc.numbers(
            frame, col, path, rows, high=qc.MAX_SECONDS, expected="seconds from 0 to 86400"
        )
        problems.extend(col_problems)
    out["years_training"], col_problems = qc.numbers(
        frame,
        "years_training",
        path,
        rows,
        high=qc.MAX_YEARS_TRAINING,
        expected=f"years of training from 0 to {qc.MAX_YEARS_TRAINING:.0f}, or blank",
    )
    problems.extend(col_problems)
    problems.extend(qc.fingerprint_problems(frame, path, rows, reference.fingerprint))
    fp = frame["set_fingerprint"].str.strip() if "set_fingerprint" in frame.columns else ""
    out["set_fingerprint"] = fp if isinstance(fp, str) else fp.to_numpy()
    return pd.DataFrame(out), problems, applied


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
    for (trainee, session), sheet_dups in dups.groupby(["trainee", "session"], sort=False):
        sess = f" in session {session!r}" if session else ""
        files = sheet_dups["file"].unique()
        by_case = list(sheet_dups.groupby("case_idx", sort=True))
        if len(files) > 1:
            case_idx, grp = by_case[0]
            where = "; ".join(f"{f} row {r}" for f, r in zip(grp["file"], grp["row"], strict=True))
            more = f", and {len(by_case) - 1} more cases" if len(by_case) > 1 else ""
            problems.append(
                DataError(
                    f"trainee {trainee!r}{sess} answered case {reference.cases[case_idx]!r} "
                    f"{len(grp)} times ({where}){more}: the trainee ID appears in "
                    f"{len(files)} answer files, so two trainees share an ID or one file was "
                    "given twice",
                    file=grp["file"].iloc[1],
                    row=int(grp["row"].iloc[1]),
                    column="trainee",
                    fix="give each trainee their own ID (rename one file or its trainee "
                    "column), or pass each file once",
                )
            )
            continue
        for case_idx, grp in by_case:
            where = "; ".join(f"{f} row {r}" for f, r in zip(grp["file"], grp["row"], strict=True))
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
    problems.extend(qc.per_sheet_constant(table, "years_training", "years of training"))
    problems.extend(
        qc.per_sheet_constant(table, "quiz_mode", "quiz_mode", {1.0: qc.AI_SUPPORT, 0.0: qc.PLAIN})
    )
    if problems:
        raise ManyErrors(
            "answer files cannot be scored",
            problems,
            fix="correct the rows listed above; nothing was scored",
        )
    keys = ["trainee", "session"]
    table["ai_support"] = (table["quiz_mode"] == 1.0) | table["unaided_given"]
    per_sheet = table.groupby(keys, sort=False).agg(
        years_training=("years_training", "max"),
        ai_support=("ai_support", "any"),
        set_fingerprint=("set_fingerprint", "first"),
    )
    sheets = (
        table[[*keys, "file"]].drop_duplicates(keys).join(per_sheet, on=keys).reset_index(drop=True)
    )
    sheet_id = pd.MultiIndex.from_frame(sheets[keys])
    rows = sheet_id.get_indexer(pd.MultiIndex.from_frame(table[keys]))
    cols = table["case_idx"].to_numpy()
    shape = (len(sheets), len(reference.cases))

    def dense(column: str, fill: float, dtype) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        out[rows, cols] = table[column].to_numpy()
        return out

    codes = dense("code", NO_ANSWER, np.int16)
    conf = dense("confidence", np.nan, float)
    conf[codes == NO_ANSWER] = np.nan
    unaided = dense("unaided_code", NO_ANSWER, np.int16)
    unaided[~sheets["ai_support"].to_numpy(dtype=bool)] = NO_ANSWER
    u_conf = dense("unaided_confidence", np.nan, float)
    u_conf[unaided == NO_ANSWER] = np.nan
    return AnswerMatrix(
        sheets=sheets,
        codes=codes,
        confidence=conf,
        synonyms=synonyms,
        unaided=unaided,
        unaided_confidence=u_conf,
        seconds=dense("seconds", np.nan, float),
        unaided_seconds=dense("unaided_seconds", np.nan, float),
        aided_seconds=dense("aided_seconds", np.nan, float),
    )
