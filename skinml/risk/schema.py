"""Survey answers: validate each cell and encode rows into model features (stdlib + numpy).

The survey schema travels with the model (metadata ``extra["survey_fields"]``),
so training and the clinician's predictor accept, reject and encode answers in
exactly the same way. A field is a plain dict (from Hydra config or metadata):

- ``{"name": "family_history", "type": "binary"}``: 1/0, yes/no, true/false;
- ``{"name": "bmi", "type": "numeric", "min": 12, "max": 80}``;
- ``{"name": "smoking", "type": "categorical", "levels": ["never", "former",
  "current"], "reference": "never"}``: one-hot columns ``smoking=former``,
  ``smoking=current`` (the reference level is all zeros).

``required: true`` makes a missing answer an error; otherwise it becomes NaN
and is mean-imputed downstream (and reported per row).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from skinml.errors import ConfigError, DataError

FIELD_TYPES = ("binary", "numeric", "categorical")
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "none", "null", "?", "unk", "unknown"})
_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "0.0", "false", "no", "n", "f"})


@dataclass(frozen=True)
class EncodedSurvey:
    """Encoded feature matrix (NaN = missing answer) and the problems found per row."""

    features: np.ndarray
    feature_names: list[str]
    errors: list[list[str]]
    n_missing: np.ndarray


def validate_fields(fields: Sequence[Mapping[str, object]]) -> None:
    """Check a schema once, so that bad configs fail before any data is read."""
    names = set()
    for f in fields:
        name, ftype = f.get("name"), f.get("type")
        if not name or ftype not in FIELD_TYPES:
            raise ConfigError(
                f"survey field {dict(f)!r} needs a name and a type",
                expected=f"type one of {FIELD_TYPES}",
            )
        if name in names:
            raise ConfigError(f"survey field {name!r} is declared twice")
        names.add(name)
        if ftype == "categorical":
            levels = list(f.get("levels") or [])  # type: ignore[call-overload]
            if len(levels) < 2:
                raise ConfigError(f"categorical survey field {name!r} needs at least two levels")
            ref = f.get("reference", levels[0])
            if ref not in levels:
                raise ConfigError(f"reference level {ref!r} of {name!r} is not among {levels}")


def feature_names(fields: Sequence[Mapping[str, object]]) -> list[str]:
    """Model feature names produced by the schema, in order."""
    out: list[str] = []
    for f in fields:
        if f["type"] == "categorical":
            levels = list(f["levels"])  # type: ignore[call-overload]
            ref = f.get("reference", levels[0])
            out.extend(f"{f['name']}={lv}" for lv in levels if lv != ref)
        else:
            out.append(str(f["name"]))
    return out


def field_of_feature(fields: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Map each feature name back to its survey field (for grouping contributions)."""
    return {name: name.split("=", 1)[0] for name in feature_names(fields)}


def missing_columns(header: Sequence[str], fields: Sequence[Mapping[str, object]]) -> list[str]:
    """Schema fields absent from a table header."""
    have = {h.strip() for h in header}
    return [str(f["name"]) for f in fields if f["name"] not in have]


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip().lower() in MISSING_TOKENS


def _encode_cell(f: Mapping[str, object], value: object) -> tuple[list[float], str | None]:
    """Encode one answer; returns (values, error message or None)."""
    name, ftype = str(f["name"]), f["type"]
    width = len(feature_names([f]))
    if _is_missing(value):
        if f.get("required"):
            return [math.nan] * width, f"column {name!r}: answer is missing but required"
        return [math.nan] * width, None
    text = str(value).strip()
    if ftype == "binary":
        low = text.lower()
        if low in _TRUE:
            return [1.0], None
        if low in _FALSE:
            return [0.0], None
        return [math.nan], (
            f"column {name!r}: {text!r} is not a yes/no answer; expected 1/0, yes/no or true/false"
        )
    if ftype == "numeric":
        try:
            x = (
                float(text.replace(",", "."))
                if text.count(",") == 1 and "." not in text
                else float(text)
            )
        except ValueError:
            return [math.nan], f"column {name!r}: {text!r} is not a number"
        lo, hi = f.get("min"), f.get("max")
        if (
            not math.isfinite(x)
            or (lo is not None and x < float(lo))
            or (hi is not None and x > float(hi))
        ):  # type: ignore[arg-type]
            return [math.nan], (
                f"column {name!r}: {text} is out of range [{lo}, {hi}]; check the units "
                f"and the value"
            )
        return [x], None
    levels = [str(lv) for lv in f["levels"]]  # type: ignore[attr-defined]
    ref = str(f.get("reference", levels[0]))
    lookup = {lv.lower(): lv for lv in levels}
    level = lookup.get(text.lower())
    if level is None:
        return [math.nan] * width, (
            f"column {name!r}: unknown category {text!r}; expected one of {levels}"
        )
    return [1.0 if lv == level else 0.0 for lv in levels if lv != ref], None


def encode_rows(
    rows: Sequence[Mapping[str, object]], fields: Sequence[Mapping[str, object]]
) -> EncodedSurvey:
    """Encode survey rows; problems are collected per row instead of raised.

    The caller decides what an error means: training raises them all at once
    (:class:`skinml.errors.ManyErrors`), the predictor writes an error row.
    """
    names = feature_names(fields)
    mat = np.full((len(rows), len(names)), np.nan)
    errors: list[list[str]] = []
    n_missing = np.zeros(len(rows), dtype=int)
    for i, row in enumerate(rows):
        vals: list[float] = []
        errs: list[str] = []
        for f in fields:
            v, err = _encode_cell(f, row.get(str(f["name"])))
            vals.extend(v)
            if err:
                errs.append(err)
            elif _is_missing(row.get(str(f["name"]))):
                n_missing[i] += 1
        mat[i] = vals
        errors.append(errs)
    return EncodedSurvey(mat, names, errors, n_missing)


def raise_if_errors(
    encoded: EncodedSurvey, *, file: str, row_ids: Sequence[object] | None = None
) -> None:
    """Raise all row problems at once, naming the file and each row."""
    from skinml.errors import ManyErrors

    problems = []
    for i, errs in enumerate(encoded.errors):
        for e in errs:
            rid = row_ids[i] if row_ids is not None else i + 2  # +2: header line, 1-based
            problems.append(DataError(e, file=file, row=rid))
    if problems:
        raise ManyErrors(
            f"survey answers in {file!r} do not match the survey schema",
            problems,
            fix="correct the listed cells (or leave an answer empty if it is unknown); "
            "the accepted values are in the risk data config",
        )
