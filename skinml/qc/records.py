"""QC records: the one-row-per-case table, its column names, and row-level validation.

A quality lead's file is messy: blank hospitals, diagnoses spelt differently,
dates typed by hand. QC must never silently drop any of it, because a hospital
that "loses" its difficult cases would look better than it is. So each problem
becomes a row in an exclusion table (which row, which column, why, and what the
row is excluded from), and only structural problems (missing required columns)
stop the run. Diagnoses (hospital, reference and AI) go through the shared
diagnosis vocabulary (:mod:`skinml.vocabulary`): "Melanoma" at one hospital and
"mel" at another are one diagnosis, ``mel``, in every table and funnel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError
from skinml.textfiles import not_utf8
from skinml.vocabulary import TABLE_POINTER, LabelSpace, canonical, malignant_codes

#: The scope a row is excluded from.
SCOPE_ALL = "all analyses"
SCOPE_TIME = "time trend (CUSUM)"
SCOPE_AI = "AI comparisons"


@dataclass(frozen=True)
class QcColumns:
    """Names of the columns in a records file (defaults follow PRODUCT.md).

    Only ``hospital`` and ``diagnosis`` are required; everything else is used
    when present.
    """

    hospital: str = "hospital"
    case: str = "case"
    image: str = "image"
    diagnosis: str = "diagnosis"
    reference: str = "reference"
    ai: str = "ai"
    device: str = "device"
    date: str = "date"
    covariates: tuple[str, ...] = ("age", "sex", "localization")

    def with_overrides(self, **kwargs: object) -> QcColumns:
        """A copy with the given non-None names replaced (used by the CLI)."""
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})


@dataclass
class Records:
    """Validated records in canonical column names, plus everything that was set aside.

    Attributes:
        frame: one row per usable case with canonical columns ``row, hospital, case,
            image, diagnosis, reference, ai, device, date`` (absent ones are missing)
            and the case-mix covariates under their own names.
        excluded: one row per problem: ``row, column, value, reason, excluded_from``.
        hospitals_without_records: names in the ``--hospitals`` list that had no usable row.
        columns: the mapping used.
        covariates: the covariates actually present.
        source: where the records came from (for messages).
        vocabulary: the allowed diagnoses as canonical codes (None: any diagnosis).
    """

    frame: pd.DataFrame
    excluded: pd.DataFrame
    hospitals_without_records: list[str] = field(default_factory=list)
    columns: QcColumns = field(default_factory=QcColumns)
    covariates: list[str] = field(default_factory=list)
    source: str = "records"
    vocabulary: tuple[str, ...] | None = None

    def has(self, name: str) -> bool:
        """True if the canonical column exists and has at least one value."""
        return name in self.frame and self.frame[name].notna().any()


_EXCLUDED_COLUMNS = ["row", "column", "value", "reason", "excluded_from"]


def read_records_csv(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a records CSV as strings (so that codes like '007' or 'NA' stay what they are)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            "records file not found", file=p, fix="check the path, or run from the folder it is in"
        )
    from importlib.util import find_spec

    engine = (
        "pyarrow" if find_spec("pyarrow") is not None else "c"
    )  # pyarrow: ~5x faster on 1M rows
    try:
        return pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], engine=engine)
    except UnicodeDecodeError as exc:
        raise not_utf8(p) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(
            f"cannot parse as CSV: {exc}", file=p, expected="a comma-separated file with a header"
        ) from exc


def validate_records(
    raw: pd.DataFrame,
    columns: QcColumns = QcColumns(),
    *,
    hospitals: Iterable[str] | None = None,
    vocabulary: Iterable[str] | None = None,
    source: str = "records",
) -> Records:
    """Check every row and split the table into usable records and listed exclusions.

    Args:
        raw: the records as read (any dtype; strings are stripped).
        columns: where each field lives.
        hospitals: the known hospitals; rows naming another are excluded, and listed
            hospitals with no rows are reported.
        vocabulary: allowed diagnosis codes or synonyms (applies to diagnosis and
            reference); diagnoses outside it are excluded rows.
        source: file name for error messages.

    Raises:
        DataError: when a required column is missing or the table is empty.
    """
    missing = [c for c in (columns.hospital, columns.diagnosis) if c not in raw.columns]
    if missing:
        raise DataError(
            f"required column(s) {missing} missing; found {list(raw.columns)}",
            file=source,
            column=missing[0],
            expected="one row per case with a hospital and a diagnosis column",
            fix="rename the columns or pass --hospital-column / --diagnosis-column",
        )
    if len(raw) == 0:
        raise DataError("no rows", file=source, fix="export at least one case")

    frame = pd.DataFrame({"row": np.arange(1, len(raw) + 1)}, index=raw.index)
    mapping = {
        "hospital": columns.hospital,
        "case": columns.case,
        "image": columns.image,
        "diagnosis": columns.diagnosis,
        "reference": columns.reference,
        "ai": columns.ai,
        "device": columns.device,
    }
    for canon, col in mapping.items():
        frame[canon] = (
            _clean_text(raw[col]) if col in raw.columns else pd.Series(np.nan, index=raw.index)
        )
    vocab = None if vocabulary is None else tuple(sorted({canonical(v) for v in vocabulary}))
    written = frame[["diagnosis", "reference"]].copy()  # for the exclusion table
    outside = {}
    for col in ("diagnosis", "reference", "ai"):
        frame[col], outside[col] = diagnosis_codes(frame[col], vocab)
    covs = [c for c in columns.covariates if c in raw.columns]
    for c in covs:
        frame[c] = _clean_text(raw[c])

    problems: list[pd.DataFrame] = []

    def note(mask: pd.Series, column: str, reason: str, scope: str, value: pd.Series) -> None:
        if mask.any():
            problems.append(
                pd.DataFrame(
                    {
                        "row": frame.loc[mask, "row"].to_numpy(),
                        "column": column,
                        "value": value[mask]
                        .astype(object)
                        .where(value[mask].notna(), "")
                        .to_numpy(),
                        "reason": reason,
                        "excluded_from": scope,
                    }
                )
            )

    note(
        frame["hospital"].isna(),
        columns.hospital,
        "hospital is empty",
        SCOPE_ALL,
        frame["hospital"],
    )
    note(
        frame["diagnosis"].isna(),
        columns.diagnosis,
        "diagnosis is empty",
        SCOPE_ALL,
        frame["diagnosis"],
    )
    known = None if hospitals is None else {str(h).strip() for h in hospitals}
    if known is not None:
        bad = frame["hospital"].notna() & ~frame["hospital"].isin(known)
        note(
            bad,
            columns.hospital,
            "hospital not in the --hospitals list",
            SCOPE_ALL,
            frame["hospital"],
        )
    if vocab is not None:
        accepted = f"(accepted: {', '.join(vocab)}, or a synonym of one; see {TABLE_POINTER})"
        note(
            outside["diagnosis"],
            columns.diagnosis,
            f"diagnosis not in the vocabulary {accepted}",
            SCOPE_ALL,
            written["diagnosis"],
        )
        note(
            outside["reference"],
            columns.reference,
            f"reference diagnosis not in the vocabulary {accepted}",
            SCOPE_ALL,
            written["reference"],
        )
    key = "case" if frame["case"].notna().any() else "image"
    if frame[key].notna().any():
        dup = frame[key].notna() & frame.duplicated(["hospital", key], keep="first")
        note(
            dup,
            mapping[key],
            f"duplicate {key} for this hospital (first row kept)",
            SCOPE_ALL,
            frame[key],
        )

    frame["date"] = pd.NaT
    if columns.date in raw.columns:
        text = _clean_text(raw[columns.date])
        parsed = _parse_dates(text)
        frame["date"] = parsed
        note(text.notna() & parsed.isna(), columns.date, "date does not parse", SCOPE_TIME, text)

    excluded = (
        pd.concat(problems, ignore_index=True)
        if problems
        else pd.DataFrame(columns=_EXCLUDED_COLUMNS)
    )
    drop_rows = set(excluded.loc[excluded["excluded_from"] == SCOPE_ALL, "row"])
    usable = frame[~frame["row"].isin(drop_rows)].reset_index(drop=True)
    excluded = excluded.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    without = sorted(known - set(usable["hospital"])) if known is not None else []
    return Records(usable, excluded, without, columns, covs, str(source), vocab)


def load_records(
    path: str | PathLike[str],
    columns: QcColumns = QcColumns(),
    *,
    hospitals: Iterable[str] | None = None,
    vocabulary: Iterable[str] | None = None,
) -> Records:
    """Read and validate a records CSV (see :func:`validate_records`)."""
    return validate_records(
        read_records_csv(path),
        columns,
        hospitals=hospitals,
        vocabulary=vocabulary,
        source=str(path),
    )


def read_name_list(value: str | None) -> list[str] | None:
    """Parse ``a,b,c`` or a path to a file with one name per line (CLI helper)."""
    if value is None:
        return None
    p = Path(value)
    if p.is_file():
        names = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
        return [n for n in names if n and not n.startswith("#")]
    return [v.strip() for v in value.split(",") if v.strip()]


def diagnosis_codes(
    labels: pd.Series, vocabulary: Sequence[str] | None = None
) -> tuple[pd.Series, pd.Series]:
    """Labels as canonical codes (onto ``vocabulary`` when given) and a mask of those outside it.

    Each distinct label is looked up once, so a million records cost a few
    hundred look-ups. With a vocabulary, a narrower diagnosis becomes the
    broader one the vocabulary lists (``solar lentigo`` -> ``bkl``); a label
    outside it keeps its canonical code and is marked.
    """
    space = LabelSpace(vocabulary, name="the vocabulary")
    distinct = labels.dropna().unique()
    found, unknown = space.mapping(distinct)
    found.update({u: canonical(u) for u in unknown})
    codes = labels.map(found).where(labels.notna())
    return codes, labels.isin(unknown) & labels.notna()


def malignant_mask(labels: pd.Series, malignant: Iterable[str] | None = None) -> pd.Series:
    """Boolean series: label is a malignant diagnosis (case-insensitive); NaN stays NaN.

    ``malignant`` defaults to the diagnosis table's malignant codes.
    """
    mal = {canonical(m).lower() for m in (malignant_codes() if malignant is None else malignant)}
    out = labels.astype("string").str.lower().isin(mal).astype("boolean")
    return out.mask(labels.isna())


def describe_exclusions(excluded: pd.DataFrame) -> pd.DataFrame:
    """Counts per reason and scope, for the report's summary table."""
    if excluded.empty:
        return pd.DataFrame(columns=["reason", "column", "excluded_from", "rows"])
    return (
        excluded.groupby(["reason", "column", "excluded_from"], sort=True)
        .size()
        .rename("rows")
        .reset_index()
    )


def _clean_text(series: pd.Series) -> pd.Series:
    """Strip whitespace; empty strings become missing."""
    s = series.astype("str").str.strip()
    return s.where(s != "")


def _parse_dates(text: pd.Series) -> pd.Series:
    """ISO dates fast (vectorised); anything else element by element; failures become NaT."""
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    retry = text.notna() & parsed.isna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed")
    return parsed
