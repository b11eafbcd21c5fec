"""Diagnosis vocabulary: turn what a trainee writes into the reference's class codes.

Residents write "Melanoma", "naevus" or "BCC" on an answer sheet; the reference
key uses HAM10000 codes (``mel``, ``nv``, ``bcc``...). Mapping every written
form through one documented table keeps scoring honest: a synonym is accepted,
anything else is an error naming the file, row and value, so no answer is
silently scored as wrong because of its spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from os import PathLike

import numpy as np
import pandas as pd

from skinml.errors import DataError, ManyErrors

#: Which HAM10000 diagnoses are malignant (the ``--malignant`` default).
HAM10000_MALIGNANT: tuple[str, ...] = ("mel", "bcc", "akiec")

#: Readable names for HAM10000 codes, used in reports.
DIAGNOSIS_NAMES: dict[str, str] = {
    "akiec": "actinic keratosis / Bowen's disease",
    "bcc": "basal cell carcinoma",
    "bkl": "benign keratosis",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "melanocytic nevus",
    "vasc": "vascular lesion",
}

#: Written forms (lower case, spaces collapsed) accepted for each HAM10000 code.
SYNONYMS: dict[str, str] = {
    "melanoma": "mel",
    "malignant melanoma": "mel",
    "naevus": "nv",
    "nevus": "nv",
    "mole": "nv",
    "melanocytic nevus": "nv",
    "melanocytic naevus": "nv",
    "basal cell carcinoma": "bcc",
    "actinic keratosis": "akiec",
    "bowen": "akiec",
    "bowen's disease": "akiec",
    "bowen disease": "akiec",
    "seborrheic keratosis": "bkl",
    "seborrhoeic keratosis": "bkl",
    "solar lentigo": "bkl",
    "lichen planus-like keratosis": "bkl",
    "benign keratosis": "bkl",
    "dermatofibroma": "df",
    "vascular": "vasc",
    "vascular lesion": "vasc",
    "angioma": "vasc",
}

#: Marker for a case the trainee left blank (counted as wrong, never dropped).
UNANSWERED = ""


def display_name(code: str) -> str:
    """``"mel"`` -> ``"melanoma (mel)"``; unknown codes are shown as they are."""
    name = DIAGNOSIS_NAMES.get(code)
    return f"{name} ({code})" if name else code


def _key(value: str) -> str:
    return " ".join(value.strip().lower().split())


def normalise_diagnoses(
    values: pd.Series,
    vocabulary: Iterable[str],
    *,
    file: str | PathLike[str],
    column: str = "diagnosis",
    row_numbers: Iterable[int] | None = None,
    synonyms: Mapping[str, str] = SYNONYMS,
) -> tuple[pd.Series, dict[str, str]]:
    """Map written diagnoses to vocabulary codes; blanks become :data:`UNANSWERED`.

    Matching is case-insensitive: first the code itself (``"MEL"``), then the
    synonym table. Only unique strings are looked up, so a 50,000-row answer
    file costs a handful of dictionary look-ups.

    Args:
        values: the diagnosis column as read (strings or NaN).
        vocabulary: the reference's class codes.
        file: the answer file, for error messages.
        column: the column name, for error messages.
        row_numbers: the spreadsheet row number of each value (header = row 1).
        synonyms: written form -> code table.

    Returns:
        The codes (same index as ``values``) and the synonym mappings that were
        applied (``{"Melanoma": "mel"}``), so a report can show them.

    Raises:
        ManyErrors: listing every value outside the vocabulary with its row.
    """
    vocab = {_key(v): v for v in vocabulary}
    rows = np.arange(len(values)) + 2 if row_numbers is None else np.asarray(list(row_numbers))
    text = values.astype("string").fillna("").str.strip()
    lookup: dict[str, str] = {}
    applied: dict[str, str] = {}
    unknown: list[str] = []
    for raw in pd.unique(text):
        key = _key(raw)
        if key == "":
            lookup[raw] = UNANSWERED
        elif key in vocab:
            lookup[raw] = vocab[key]
        elif key in synonyms and synonyms[key] in vocab.values():
            lookup[raw] = synonyms[key]
            applied[raw] = synonyms[key]
        else:
            unknown.append(raw)
    if unknown:
        expected = (
            f"one of the codes {sorted(vocab.values())} (any case) or a synonym such as "
            "'melanoma', 'nevus', 'basal cell carcinoma' (see skinml.teach.vocabulary.SYNONYMS),"
            " or a blank cell for an unanswered case"
        )
        problems = []
        bad = text.isin(unknown).to_numpy()
        for value, row in zip(text[bad], rows[bad], strict=True):
            problems.append(
                DataError(f"unknown diagnosis {value!r}", file=file, row=int(row), column=column)
            )
        raise ManyErrors(
            f"{file}: diagnoses outside the vocabulary",
            problems,
            fix=f"write {expected}",
        )
    return text.map(lookup).astype(str), applied
