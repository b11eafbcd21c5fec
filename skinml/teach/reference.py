"""The instructor's key (``reference.csv``) and the class vocabulary that goes with it.

A teaching set holds only some diagnoses, yet a trainee may answer any of
them (calling a nevus "df" is a real, scorable mistake). The vocabulary is
therefore the set's full class list from ``teaching_set.json`` when it sits
beside the reference, else the reference's own diagnoses in their canonical
codes (plus the other HAM10000 codes when the reference uses HAM10000 codes).
Reference diagnoses go through the shared diagnosis table like every other
label, so a hand-edited "Melanoma" is the set's ``mel``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.data.loaders.ham10000 import HAM10000_CLASSES
from skinml.errors import DataError, ManyErrors
from skinml.teach.fingerprint import fingerprint_of_folder
from skinml.teach.vocabulary import HAM10000_MALIGNANT
from skinml.textfiles import read_csv
from skinml.vocabulary import LabelSpace, map_labels

REFERENCE_COLUMNS = ("case", "diagnosis", "malignant", "source_image")
SET_CARD = "teaching_set.json"

_TRUE = {"1", "true", "yes", "y", "t", "malignant"}
_FALSE = {"0", "false", "no", "n", "f", "benign"}


@dataclass(frozen=True)
class Reference:
    """The key to one teaching set.

    Attributes:
        cases: case IDs in reference order.
        diagnosis: reference class code per case.
        classes: every code a trainee may answer (sorted).
        malignant_classes: the subset of ``classes`` that is malignant.
        frame: the reference table as read (extra columns kept).
        source: the file it came from.
        fingerprint: the set's fingerprint (:mod:`skinml.teach.fingerprint`), from
            ``teaching_set.json`` or ``SHA256SUMS`` beside the file; None when neither
            is there (then quiz exports cannot be checked against the set).
    """

    cases: tuple[str, ...]
    diagnosis: tuple[str, ...]
    classes: tuple[str, ...]
    malignant_classes: tuple[str, ...]
    frame: pd.DataFrame
    source: str
    fingerprint: str | None = None

    @property
    def codes(self) -> np.ndarray:
        """Reference diagnosis per case as an index into ``classes``."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[d] for d in self.diagnosis], dtype=np.int16)

    @property
    def malignant_mask(self) -> np.ndarray:
        """Boolean per class: is this class malignant."""
        return np.array([c in self.malignant_classes for c in self.classes], dtype=bool)

    @property
    def case_index(self) -> dict[str, int]:
        """Lower-cased case ID -> position, for case-insensitive matching."""
        return {c.lower(): i for i, c in enumerate(self.cases)}


def _parse_bool(value: str) -> bool | None:
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def read_reference(path: str | PathLike[str], *, classes: list[str] | None = None) -> Reference:
    """Read and check ``reference.csv``.

    Args:
        path: the reference CSV (case, diagnosis, malignant[, source_image]).
        classes: the answer vocabulary; default from ``teaching_set.json``
            beside the file, else inferred (see module docstring).

    Raises:
        DataError / ManyErrors: missing columns, duplicate or blank case IDs,
            blank diagnoses, unreadable ``malignant`` values, or a diagnosis
            marked malignant in one row and benign in another.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "reference file does not exist",
            file=path,
            fix="pass the reference.csv written by `skinml-teach build`",
        )
    frame = read_csv(path, dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("case", "diagnosis", "malignant") if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing columns {missing}; found {list(frame.columns)}",
            file=path,
            expected="columns case, diagnosis, malignant (and optionally source_image)",
            fix="use the reference.csv written by `skinml-teach build`",
        )
    for col in ("case", "diagnosis", "malignant"):
        frame[col] = frame[col].str.strip()
    problems: list[DataError] = []
    for i in np.flatnonzero((frame["case"] == "").to_numpy()):
        problems.append(DataError("empty case ID", file=path, row=int(i) + 2, column="case"))
    for i in np.flatnonzero((frame["diagnosis"] == "").to_numpy()):
        problems.append(DataError("empty diagnosis", file=path, row=int(i) + 2, column="diagnosis"))
    dup = frame["case"].str.lower().duplicated(keep=False) & (frame["case"] != "")
    for i in np.flatnonzero(dup.to_numpy()):
        problems.append(
            DataError(
                f"case {frame.at[i, 'case']!r} listed more than once",
                file=path,
                row=int(i) + 2,
                column="case",
            )
        )
    flags = frame["malignant"].map(_parse_bool)
    for i in np.flatnonzero(flags.isna().to_numpy()):
        problems.append(
            DataError(
                f"cannot read malignant={frame.at[i, 'malignant']!r}",
                file=path,
                row=int(i) + 2,
                column="malignant",
                expected="true/false, 1/0 or yes/no",
            )
        )
    if problems:
        raise ManyErrors(f"reference {str(path)!r} is not a valid teaching-set key", problems)
    frame["malignant"] = flags.astype(bool)
    card = path.parent / SET_CARD
    card_malignant: set[str] = set()
    where = "the classes given"
    doc = json.loads(card.read_text(encoding="utf-8")) if card.is_file() else {}
    fingerprint = doc.get("fingerprint") or fingerprint_of_folder(path.parent)
    if classes is None and card.is_file():
        classes = list(doc.get("classes", []))
        card_malignant = set(doc.get("malignant_classes", [])) & set(classes)
        where = f"the classes in {SET_CARD}"
    space = LabelSpace(classes, name=where)
    frame["diagnosis"] = map_labels(
        frame["diagnosis"].tolist(), space, file=path, column="diagnosis"
    )
    mixed = frame.groupby("diagnosis")["malignant"].nunique()
    if (mixed > 1).any():
        raise DataError(
            f"diagnoses {sorted(mixed.index[mixed > 1])} are marked malignant in some rows and "
            "benign in others",
            file=path,
            column="malignant",
            fix="a trainee's answer is scored as a malignant call by its diagnosis, so mark "
            "each diagnosis consistently",
        )
    present = sorted(frame["diagnosis"].unique())
    malignant = set(frame.loc[frame["malignant"], "diagnosis"]) | card_malignant
    if classes is None:
        classes = list(present)
        if set(present) <= set(HAM10000_CLASSES):
            classes = sorted(HAM10000_CLASSES)
            malignant |= set(HAM10000_MALIGNANT) - set(present)
    return Reference(
        cases=tuple(frame["case"]),
        diagnosis=tuple(frame["diagnosis"]),
        classes=tuple(sorted(classes)),
        malignant_classes=tuple(sorted(malignant)),
        frame=frame,
        source=str(path),
        fingerprint=fingerprint,
    )
