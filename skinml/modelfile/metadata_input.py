"""Patient metadata (age, sex, anatomical site) as the model's second input: one encoding for all.

Metadata fusion (as the SIIM-ISIC 2020 winners did) feeds a fixed-length feature vector
beside the image. The rules that turn a manifest or CSV row into that vector are fitted
once, on the training split, and stored in the model file
(``ModelMetadata.extra["metadata_input"]``); training, export verification, int8
calibration and the torch-free predictor all call this module, so the clinic encodes a
row exactly as training did. Standard library and numpy only (the predictor imports it).

The rules, per column kind:

* **numeric** (``age``, years, valid range [0, 120]): two features, ``age`` =
  ``(value - train mean) / train std`` and ``age_missing``. A missing value gives
  ``age = 0`` (the training mean) and ``age_missing = 1``. A value that is not a number
  or lies outside the range is an error naming the column and row: never clipped.
* **categorical** (``sex``, ``localization`` and any other column): one-hot over the
  categories plus an explicit ``<column>=unknown`` slot. A missing value sets the unknown
  slot. ``sex`` has a closed vocabulary (``female``, ``male``): any other value is an
  error, in training and in prediction (``femal`` is a typo, not a new category, and must
  not become one because it occurred in the training split). Other columns
  (``localization``) have open vocabularies, the categories seen in training: an unseen
  value sets the unknown slot, with a note (anatomical site names differ between
  datasets and rare sites may be absent from training).

Missing means an empty cell, NaN, or one of :data:`MISSING_TOKENS` (``unknown``, ``NA``...).
Category tokens are compared after lower-casing, turning ``_`` into a space and collapsing
whitespace, so ``Lower_Extremity`` and ``lower  extremity`` are the same site.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skinml.errors import ConfigError, DataError, ModelFileError

#: Name of the graph input that carries the encoded metadata.
METADATA_INPUT_NAME = "metadata"
#: Version of the ``to_dict`` document (bump when the rules change).
ENCODING_FORMAT = 1
#: Normalised cell values that mean "not recorded".
MISSING_TOKENS = ("", "unknown", "nan", "na", "n/a", "none", "null", "?")
#: Columns read as numbers, with their unit and valid range.
NUMERIC_COLUMNS: dict[str, tuple[str, float, float]] = {"age": ("years", 0.0, 120.0)}
#: Categorical columns with a fixed vocabulary: any other value is an error, never a category.
CLOSED_VOCABULARY: dict[str, tuple[str, ...]] = {"sex": ("female", "male")}
UNKNOWN = "unknown"


class MetadataValueError(DataError):
    """One metadata cell that cannot be encoded (the caller adds file and row)."""

    def located(self, *, file: str | None = None, row: int | str | None = None) -> DataError:
        """The same problem as a :class:`DataError` that also names the file and row."""
        return DataError(
            self.problem,
            file=file,
            row=row,
            column=self.column,
            expected=self.expected,
            fix=self.fix,
        )


def normalise_token(value: Any) -> str:
    """Canonical spelling of a category cell: lower case, ``_`` as space, single spaces."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 2.0 read by pandas and "2" typed in a CSV are the same category
    return " ".join(str(value).replace("_", " ").split()).lower()


def is_missing(value: Any) -> bool:
    """Whether a cell means "not recorded" (None, NaN, empty or a :data:`MISSING_TOKENS` word)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and normalise_token(value) in MISSING_TOKENS


@dataclass(frozen=True)
class NumericColumn:
    """A numeric column standardised with training statistics, plus a missing indicator."""

    name: str
    mean: float
    std: float
    low: float
    high: float
    unit: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (self.name, f"{self.name}_missing")

    def parse(self, value: Any) -> float | None:
        """The number in a cell, None when missing.

        Raises:
            MetadataValueError: not a number, or outside ``[low, high]``.
        """
        if is_missing(value):
            return None
        expected = f"a number of {self.unit or 'units'} in [{self.low:g}, {self.high:g}], or empty"
        try:
            if isinstance(value, bool):  # float(True) == 1.0, but True is no age
                raise TypeError(value)
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise MetadataValueError(
                f"{value!r} is not a number",
                column=self.name,
                expected=expected + " for unknown",
                fix="correct the value, or leave the cell empty if it is not known",
            ) from None
        if not self.low <= number <= self.high:  # NaN and inf fail here too
            raise MetadataValueError(
                f"{value!r} is out of range",
                column=self.name,
                expected=expected + " for unknown",
                fix="correct the value (a typo?), or leave the cell empty if it is not known",
            )
        return number

    def encode(self, value: Any) -> tuple[list[float], str | None]:
        number = self.parse(value)
        if number is None:
            return [0.0, 1.0], f"{self.name} unknown"
        return [(number - self.mean) / self.std, 0.0], None

    def missing(self) -> list[float]:
        return [0.0, 1.0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.name,
            "kind": "numeric",
            "unit": self.unit,
            "valid_range": [self.low, self.high],
            "mean": self.mean,
            "std": self.std,
            "features": list(self.feature_names),
            "transform": f"{self.name} = ({self.name} - mean) / std; {self.name}_missing = 0",
            "missing": f"{self.name} = 0 (the training mean), {self.name}_missing = 1",
            "invalid": "not a number or outside valid_range: an error for that row",
        }


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical column one-hot encoded over training categories plus an unknown slot."""

    name: str
    categories: tuple[str, ...]
    unseen: str = UNKNOWN  # "unknown" (open vocabulary) or "error" (closed vocabulary)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (*(f"{self.name}={c}" for c in self.categories), f"{self.name}={UNKNOWN}")

    def encode(self, value: Any) -> tuple[list[float], str | None]:
        """One-hot features and an optional note for the user.

        Raises:
            MetadataValueError: an unseen value of a closed-vocabulary column.
        """
        out = [0.0] * (len(self.categories) + 1)
        if is_missing(value):
            out[-1] = 1.0
            return out, f"{self.name} unknown"
        token = normalise_token(value)
        if token in self.categories:
            out[self.categories.index(token)] = 1.0
            return out, None
        if self.unseen == "error":
            raise MetadataValueError(
                f"{value!r} is not a recognised value",
                column=self.name,
                expected=f"one of {list(self.categories)} (any case), or empty for unknown",
                fix="correct the spelling, or leave the cell empty if it is not known",
            )
        out[-1] = 1.0
        return out, f"{self.name} {value!r} not seen in training: treated as unknown"

    def missing(self) -> list[float]:
        return [0.0] * len(self.categories) + [1.0]

    def to_dict(self) -> dict[str, Any]:
        unseen = (
            "an error for that row (closed vocabulary)"
            if self.unseen == "error"
            else f"{self.name}={UNKNOWN} = 1, with a note in the prediction row"
        )
        return {
            "column": self.name,
            "kind": "categorical",
            "categories": list(self.categories),
            "unseen": self.unseen,
            "features": list(self.feature_names),
            "transform": "one-hot over categories (after case/space/underscore normalisation)",
            "missing": f"{self.name}={UNKNOWN} = 1, every other {self.name} feature 0",
            "unseen_rule": unseen,
        }


Column = NumericColumn | CategoricalColumn


@dataclass(frozen=True)
class EncodedRows:
    """Features of many rows, what went wrong (row index, error), and the unknown handling.

    ``unknown[i, j]`` says that column ``j`` of row ``i`` was encoded as unknown (missing,
    or unseen in an open vocabulary); ``notes[i]`` says so in words.
    """

    features: np.ndarray
    unknown: np.ndarray
    errors: list[tuple[int, MetadataValueError]] = field(default_factory=list)
    notes: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class MetadataEncoding:
    """The frozen rules that turn metadata cells into the model's ``metadata`` input.

    Build it with :func:`fit_metadata_encoding` on the training split; store it with
    :meth:`to_dict`; rebuild it anywhere (also without torch) with :meth:`from_dict`.
    """

    columns: tuple[Column, ...]
    n_fitted: int = 0

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(n for c in self.columns for n in c.feature_names)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def column_slices(self) -> list[tuple[slice, np.ndarray]]:
        """Per column: its slice of the feature vector and its "missing" features."""
        out, start = [], 0
        for c in self.columns:
            stop = start + len(c.feature_names)
            out.append((slice(start, stop), np.asarray(c.missing(), dtype=np.float32)))
            start = stop
        return out

    def encode_row(self, values: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
        """Features of one row (a mapping column -> cell) and notes on unknown handling.

        An absent key counts as a missing value; whether a column may be absent at all is
        the caller's decision (the predictor refuses a CSV without it).

        Raises:
            MetadataValueError: for the first cell that cannot be encoded.
        """
        feats: list[float] = []
        notes: list[str] = []
        for c in self.columns:
            f, note = c.encode(values.get(c.name))
            feats.extend(f)
            if note:
                notes.append(note)
        return np.asarray(feats, dtype=np.float32), notes

    def encode_rows(self, rows: Sequence[Mapping[str, Any]]) -> EncodedRows:
        """Encode many rows, collecting every bad cell instead of stopping at the first.

        Rows with an error get the all-missing vector so the array stays aligned.
        """
        feats = np.zeros((len(rows), self.n_features), dtype=np.float32)
        unknown = np.zeros((len(rows), len(self.columns)), dtype=bool)
        errors: list[tuple[int, MetadataValueError]] = []
        notes: list[list[str]] = []
        for i, row in enumerate(rows):
            row_notes: list[str] = []
            start = 0
            for j, c in enumerate(self.columns):
                width = len(c.feature_names)
                try:
                    f, note = c.encode(row.get(c.name))
                except MetadataValueError as exc:
                    errors.append((i, exc))
                    f, note = c.missing(), None
                feats[i, start : start + width] = f
                if note:
                    row_notes.append(note)
                    unknown[i, j] = True
                start += width
            notes.append(row_notes)
        return EncodedRows(feats, unknown, errors, notes)

    def describe(self) -> str:
        """One line per column for help texts and error messages."""
        lines = []
        for c in self.columns:
            if isinstance(c, NumericColumn):
                lines.append(
                    f"{c.name}: number of {c.unit or 'units'} in [{c.low:g}, {c.high:g}]; "
                    "empty = unknown"
                )
            else:
                unseen = (
                    "other values are an error"
                    if c.unseen == "error"
                    else ("other values are treated as unknown")
                )
                lines.append(
                    f"{c.name}: one of {', '.join(c.categories)} (any case); empty = unknown; "
                    + unseen
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored as ``extra["metadata_input"]`` in the model file."""
        return {
            "format": ENCODING_FORMAT,
            "input": METADATA_INPUT_NAME,
            "columns": list(self.column_names),
            "feature_names": list(self.feature_names),
            "n_features": self.n_features,
            "encoding": [c.to_dict() for c in self.columns],
            "missing_tokens": list(MISSING_TOKENS),
            "token_normalisation": "lower case, '_' read as a space, whitespace collapsed",
            "fitted_on": "training split",
            "n_fitted_rows": self.n_fitted,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "model file") -> MetadataEncoding:
        """Rebuild the encoding stored by :meth:`to_dict`.

        Raises:
            ModelFileError: for an unknown format or a malformed document.
        """
        if doc.get("format") != ENCODING_FORMAT:
            raise ModelFileError(
                f"unsupported metadata-input encoding format {doc.get('format')!r}",
                file=source,
                expected=f"format {ENCODING_FORMAT}",
                fix="upgrade skinml, or re-export the model with this skinml version",
            )
        columns: list[Column] = []
        try:
            for d in doc["encoding"]:
                if d["kind"] == "numeric":
                    low, high = d["valid_range"]
                    columns.append(
                        NumericColumn(
                            d["column"],
                            float(d["mean"]),
                            float(d["std"]),
                            float(low),
                            float(high),
                            d.get("unit", ""),
                        )
                    )
                elif d["kind"] == "categorical":
                    columns.append(
                        CategoricalColumn(d["column"], tuple(d["categories"]), d["unseen"])
                    )
                else:
                    raise ModelFileError(f"unknown metadata column kind {d['kind']!r}", file=source)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"the metadata-input encoding is malformed ({exc!r})",
                file=source,
                fix="re-export the model with skinml-export",
            ) from exc
        enc = cls(tuple(columns), n_fitted=int(doc.get("n_fitted_rows", 0)))
        if list(enc.feature_names) != list(doc.get("feature_names", enc.feature_names)):
            raise ModelFileError(
                "the metadata-input feature names do not match its encoding rules",
                file=source,
                fix="re-export the model with skinml-export",
            )
        return enc


def fit_metadata_encoding(
    columns: Sequence[str],
    values: Mapping[str, Sequence[Any]],
    *,
    source: str = "manifest",
    available: Sequence[str] | None = None,
) -> MetadataEncoding:
    """Fit the encoding on the training split's metadata cells.

    Values are only parsed here (errors are the caller's to report with rows, see
    :meth:`MetadataEncoding.encode_rows`); invalid cells are ignored for the statistics.

    Args:
        columns: the configured metadata columns, e.g. ``["age", "sex", "localization"]``.
        values: column -> the training rows' cells.
        source: the dataset named in errors.
        available: every column of the manifest (listed when a configured one is absent).

    Raises:
        ConfigError: a column is absent from the data, configured twice, or has no
            usable value in the training split.
    """
    names = [str(c).strip() for c in columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ConfigError(
            f"metadata columns {twice} are listed more than once",
            column="data.metadata_columns",
            fix="list every column once",
        )
    absent = [c for c in names if c not in values]
    if absent:
        have = list(available) if available is not None else sorted(values)
        raise ConfigError(
            f"metadata columns {absent} are not in the data; its columns are {have}",
            file=source,
            column="data.metadata_columns",
            fix="spell the columns as in the manifest (e.g. age, sex, localization), or "
            "remove them",
        )
    fitted: list[Column] = []
    n_rows = 0
    for name in names:
        cells = list(values[name])
        n_rows = max(n_rows, len(cells))
        if name in NUMERIC_COLUMNS:
            unit, low, high = NUMERIC_COLUMNS[name]
            probe = NumericColumn(name, 0.0, 1.0, low, high, unit)
            numbers = []
            for v in cells:
                try:
                    x = probe.parse(v)
                except MetadataValueError:
                    continue
                if x is not None:
                    numbers.append(x)
            if not numbers:
                _no_values(name, source)
            arr = np.asarray(numbers, dtype=np.float64)
            std = float(arr.std()) if len(arr) > 1 and arr.std() > 0 else 1.0
            fitted.append(NumericColumn(name, float(arr.mean()), std, low, high, unit))
        else:
            seen = sorted({normalise_token(v) for v in cells if not is_missing(v)})
            if not seen:
                _no_values(name, source)
            if name in CLOSED_VOCABULARY:  # bad cells are reported row by row by encode_rows
                fitted.append(CategoricalColumn(name, CLOSED_VOCABULARY[name], "error"))
            else:
                fitted.append(CategoricalColumn(name, tuple(seen), UNKNOWN))
    return MetadataEncoding(tuple(fitted), n_fitted=n_rows)


def _no_values(name: str, source: str) -> None:
    raise ConfigError(
        f"metadata column {name!r} has no usable value in the training split",
        file=source,
        column="data.metadata_columns",
        fix=f"remove {name!r} from data.metadata_columns, or fill it in the manifest",
    )
