"""The AI model as one more reader: its predictions, matched to cases, as answers.

``skinml-predict`` writes one row per input image (``input``, ``file``,
``status``, ``error``, ``predicted_class``, ``p_<class>``...,
``malignant_probability``, ``malignant_flag``). A teaching set stores the rows
for its cases as ``ai_answers.csv`` (case, diagnosis, confidence, ...), so that
the AI is scored on exactly the cases the trainees saw. The model's class
names and the reference's are matched through the shared diagnosis table
(:mod:`skinml.vocabulary`), so a HAM10000 model's ``mel`` answers an ISIC
2017 key's ``melanoma``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError, ManyErrors
from skinml.teach.answers import NO_ANSWER
from skinml.teach.reference import Reference
from skinml.textfiles import not_utf8, read_csv
from skinml.vocabulary import LabelSpace

PREDICTION_COLUMNS = ("predicted_class",)
PROB_PREFIX = "p_"


def prediction_classes(frame: pd.DataFrame) -> list[str]:
    """Class names from the ``p_<class>`` columns, in file order."""
    return [c[len(PROB_PREFIX) :] for c in frame.columns if c.startswith(PROB_PREFIX)]


def _ok_mask(frame: pd.DataFrame) -> np.ndarray:
    has_class = frame["predicted_class"].fillna("").astype(str).str.strip() != ""
    if "status" in frame.columns:
        status_ok = frame["status"].fillna("").astype(str).str.strip().str.lower() == "ok"
        return (status_ok & has_class).to_numpy()
    return has_class.to_numpy()


def read_predictions(path: str | PathLike[str]) -> tuple[pd.DataFrame, list[str]]:
    """Read a skinml-predict CSV and return it with its class list.

    Adds a boolean ``ok`` column: rows whose ``status`` is ``ok`` and that have
    a predicted class. Error rows are kept (a case the AI could not read is
    scored as unanswered), never dropped.

    Raises:
        DataError: missing file, unparseable CSV, or no ``predicted_class`` /
            ``p_<class>`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("predictions file does not exist", file=path, fix="check the path")
    try:
        frame = pd.read_csv(
            path,
            dtype={"input": str, "file": str, "status": str, "error": str, "predicted_class": str},
        )
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot parse CSV: {exc}", file=path) from exc
    classes = prediction_classes(frame)
    if "predicted_class" not in frame.columns or not classes:
        raise DataError(
            f"not a skinml-predict output; found columns {list(frame.columns)}",
            file=path,
            expected="columns input, file, status, predicted_class and p_<class> per class",
            fix="produce it with `skinml-predict MODEL.onnx IMAGES -o predictions.csv`",
        )
    frame["ok"] = _ok_mask(frame)
    bad = frame["ok"] & ~frame["predicted_class"].isin(classes)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"predicted_class {frame['predicted_class'].iloc[i]!r} has no p_ column",
            file=path,
            row=i + 2,
            column="predicted_class",
            expected=f"one of {classes}",
        )
    return frame, classes


def match_predictions(
    predictions: pd.DataFrame, images: Sequence[Path], *, predictions_path: Path
) -> np.ndarray:
    """For each image, the row of its prediction (or -1 when there is none).

    Matches the resolved path in ``file`` or ``input`` (relative paths are tried
    against the predictions file's folder and the working directory), then a
    unique file name, so predictions made from another folder still match.
    """
    lookup: dict[str, int] = {}
    names: dict[str, list[int]] = {}
    for col in ("file", "input"):
        if col not in predictions.columns:
            continue
        for i, value in enumerate(predictions[col].fillna("").astype(str)):
            if not value:
                continue
            p = Path(value)
            for cand in [p] if p.is_absolute() else [predictions_path.parent / p, p]:
                lookup.setdefault(str(cand.resolve()), i)
            names.setdefault(p.name, [])
            if i not in names[p.name]:
                names[p.name].append(i)
    out = np.full(len(images), -1, dtype=int)
    for j, img in enumerate(images):
        key = str(Path(img).resolve())
        if key in lookup:
            out[j] = lookup[key]
        elif len(names.get(Path(img).name, [])) == 1:
            out[j] = names[Path(img).name][0]
    return out


@dataclass(frozen=True)
class AiAnswers:
    """The AI's answers on a teaching set, aligned to the reference cases.

    Attributes:
        codes: index into ``reference.classes`` per case, or -1 (no usable prediction).
        confidence: the AI's probability for its own answer (NaN when none).
        p_reference: the AI's probability for the reference diagnosis.
        classes: the model's classes (from the ``p_`` columns).
        missing: cases with no row or an error row, in reference order.
        source: the file read.
    """

    codes: np.ndarray
    confidence: np.ndarray
    p_reference: np.ndarray
    classes: tuple[str, ...]
    missing: tuple[str, ...]
    source: str


def model_class_for(
    reference_classes: Sequence[str], model_classes: Sequence[str]
) -> dict[str, str]:
    """Reference class -> the model's class for the same (or the broader) diagnosis."""
    found, _ = LabelSpace(model_classes, name="the AI model's classes").mapping(reference_classes)
    return {str(k): v for k, v in found.items()}


def check_model_knows(
    reference_classes: Sequence[str], model_classes: Sequence[str], *, source: str
) -> None:
    """Refuse a reference with a class the model cannot output.

    Scoring the AI on a diagnosis it was never trained on would count every
    such case as an AI error and make the comparison with trainees unfair.
    """
    known = model_class_for(reference_classes, model_classes)
    unknown = sorted(set(reference_classes) - set(known))
    if unknown:
        raise DataError(
            f"the reference has diagnoses {unknown} that the AI model does not know "
            f"(its classes are {sorted(model_classes)})",
            file=source,
            fix="use a model trained on these diagnoses, build the teaching set from a "
            "manifest with the model's class names, or score without the AI",
        )


def read_ai_answers(path: str | PathLike[str], reference: Reference) -> AiAnswers:
    """Read ``ai_answers.csv`` (written by ``skinml-teach build``) against the reference.

    Raises:
        DataError / ManyErrors: unknown case IDs, duplicate cases, a predicted
            class outside the vocabulary, or a reference class the model does not know.
    """
    path = Path(path)
    frame, classes = read_predictions_like(path)
    check_model_knows(set(reference.diagnosis), classes, source=str(path))
    index = reference.case_index
    pos = frame["case"].astype(str).str.strip().str.lower().map(index)
    problems = [
        DataError(
            f"unknown case ID {frame['case'].iloc[i]!r}",
            file=path,
            row=int(i) + 2,
            column="case",
            fix="use the ai_answers.csv of the same teaching set",
        )
        for i in np.flatnonzero(pos.isna().to_numpy())
    ]
    dup = pos.duplicated(keep=False) & pos.notna()
    problems += [
        DataError(
            f"case {frame['case'].iloc[i]!r} appears more than once",
            file=path,
            row=int(i) + 2,
            column="case",
        )
        for i in np.flatnonzero(dup.to_numpy())
    ]
    if problems:
        raise ManyErrors(f"AI answers {str(path)!r} do not match the reference", problems)
    class_index = {c: i for i, c in enumerate(reference.classes)}
    p_column = {
        r: f"{PROB_PREFIX}{m}" for r, m in model_class_for(reference.classes, classes).items()
    }
    ok = frame["ok"].to_numpy()
    space = LabelSpace(reference.classes, name="the reference's classes")
    as_reference, outside = space.mapping(frame["diagnosis"].iloc[np.flatnonzero(ok)])
    if outside:
        raise DataError(
            f"the AI answered diagnoses {sorted(map(str, outside))} outside the reference "
            f"vocabulary {list(reference.classes)}",
            file=path,
            column="diagnosis",
            fix="list the model's classes in teaching_set.json 'classes'",
        )
    n = len(reference.cases)
    codes = np.full(n, NO_ANSWER, dtype=np.int16)
    conf = np.full(n, np.nan)
    p_ref = np.full(n, np.nan)
    rows = pos.to_numpy(dtype=float)
    for i in np.flatnonzero(ok):
        j = int(rows[i])
        pred = frame["diagnosis"].iloc[i]
        codes[j] = class_index[as_reference[pred]]
        conf[j] = float(frame[f"{PROB_PREFIX}{pred}"].iloc[i])
        p_ref[j] = float(frame[p_column[reference.diagnosis[j]]].iloc[i])
    missing = tuple(reference.cases[j] for j in np.flatnonzero(codes == NO_ANSWER))
    return AiAnswers(codes, conf, p_ref, tuple(classes), missing, str(path))


def read_predictions_like(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``ai_answers.csv``: like a predictions CSV keyed by ``case`` with ``diagnosis``."""
    if not path.is_file():
        raise DataError(
            "AI answers file does not exist",
            file=path,
            fix="pass the ai_answers.csv written by `skinml-teach build`",
        )
    frame = read_csv(path, dtype={"case": str, "diagnosis": str, "status": str})
    classes = prediction_classes(frame)
    if "case" not in frame.columns or "diagnosis" not in frame.columns or not classes:
        raise DataError(
            f"not an ai_answers.csv; found columns {list(frame.columns)}",
            file=path,
            expected="columns case, diagnosis, status, p_<class>...",
            fix="use the ai_answers.csv written by `skinml-teach build`",
        )
    frame["predicted_class"] = frame["diagnosis"]
    frame["ok"] = _ok_mask(frame)
    return frame, classes
