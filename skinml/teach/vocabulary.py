"""Answer-sheet diagnoses onto the teaching set's classes, through skinml's one vocabulary.

Residents write "Melanoma", "naevus" or "BCC" on an answer sheet; the reference
key uses the set's class codes (``mel``, ``nv``, ``bcc``...). Every written form
goes through the shared diagnosis table (:mod:`skinml.vocabulary`), the same one
manifests, QC records and ingest use: a synonym is accepted, anything else is an
error naming the file, row and value and listing the classes, so no answer is
silently scored as wrong because of its spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

import numpy as np
import pandas as pd

from skinml.data.registry import HAM10000_INFO
from skinml.errors import ManyErrors
from skinml.vocabulary import LABEL_FIX, LabelSpace, display_name, label_key, unknown_label

#: HAM10000's malignant codes (the dataset card's, ``mel, bcc, akiec``).
HAM10000_MALIGNANT: tuple[str, ...] = HAM10000_INFO.malignant

#: Marker for a case the trainee left blank (counted as wrong, never dropped).
UNANSWERED = ""

__all__ = ["HAM10000_MALIGNANT", "UNANSWERED", "display_name", "normalise_diagnoses"]


def normalise_diagnoses(
    values: pd.Series,
    vocabulary: Iterable[str],
    *,
    file: str | PathLike[str],
    column: str = "diagnosis",
    row_numbers: Iterable[int] | None = None,
) -> tuple[pd.Series, dict[str, str]]:
    """Map written diagnoses to the set's class codes; blanks become :data:`UNANSWERED`.

    Only unique strings are looked up, so a 50,000-row answer file costs a
    handful of dictionary look-ups.

    Args:
        values: the diagnosis column as read (strings or NaN).
        vocabulary: the teaching set's class codes.
        file: the answer file, for error messages.
        column: the column name, for error messages.
        row_numbers: the spreadsheet row number of each value (header = row 1).

    Returns:
        The codes (same index as ``values``) and the synonym mappings that were
        applied (``{"Melanoma": "mel"}``; case variants of a code are not listed),
        so a report can show them.

    Raises:
        ManyErrors: listing every value outside the classes with its row.
    """
    space = LabelSpace(vocabulary, name="the teaching set's classes")
    rows = np.arange(len(values)) + 2 if row_numbers is None else np.asarray(list(row_numbers))
    text = values.astype("string").fillna("").str.strip()
    found, unknown = space.mapping(u for u in pd.unique(text) if u != "")
    if unknown:
        bad = text.isin(unknown).to_numpy()
        problems = [
            unknown_label(value, space, file=file, row=int(row), column=column)
            for value, row in zip(text[bad], rows[bad], strict=True)
        ]
        raise ManyErrors(
            f"{file}: diagnoses outside the vocabulary",
            problems,  # type: ignore[arg-type]
            fix=f"{LABEL_FIX}, or leave the cell blank for an unanswered case",
        )
    applied = {str(k): v for k, v in found.items() if label_key(k) != label_key(v)}
    return text.map({"": UNANSWERED, **found}).astype(str), applied
