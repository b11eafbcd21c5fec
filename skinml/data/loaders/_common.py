"""What every loader shares: checked CSV reading and the missing-image rule.

The rule (PRODUCT.md, "nothing is lost"): rows whose image file is missing are
reported *all at once* (``ManyErrors``, each naming the CSV row and the file),
or, when the caller asks for ``on_missing="exclude"``, moved to
``Manifest.excluded`` with the reason and announced with a warning. They are
never dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import pandas as pd

from skinml.data.manifest import Manifest
from skinml.errors import ConfigError, DataError, ManyErrors
from skinml.textfiles import not_utf8

OnMissing = Literal["raise", "exclude"]
ON_MISSING: tuple[str, ...] = ("raise", "exclude")
EXCLUDED_COLUMNS = ["file", "row", "image", "label", "reason"]
#: Reason prefix for rows whose image does not exist (cards group reasons by prefix).
MISSING_IMAGE = "missing image file"
#: File suffixes treated as images by folder scans.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class MissingImagesWarning(UserWarning):
    """Rows were excluded because their image file is missing (see ``Manifest.excluded``)."""


def check_on_missing(on_missing: str) -> None:
    """Refuse an unknown ``on_missing`` value before any work is done."""
    if on_missing not in ON_MISSING:
        raise ConfigError(
            f"unknown on_missing={on_missing!r}",
            expected=f"one of {ON_MISSING}",
            fix="use 'raise' to stop and list missing files, or 'exclude' to leave those rows "
            "out (they are listed in Manifest.excluded)",
        )


def read_csv_checked(
    path: str | PathLike[str],
    *,
    required: Sequence[str],
    what: str,
    fix: str,
    missing_fix: str | None = None,
    **read_kwargs: object,
) -> pd.DataFrame:
    """Read a CSV and check that it has the columns a loader needs.

    Args:
        path: the CSV file.
        required: columns that must be present.
        what: what the file should be, for the message ("the HAM10000 metadata CSV").
        fix: what to do if it is not.
        missing_fix: what to do when the file does not exist (default: ``fix``).

    Raises:
        DataError: the file is missing, unreadable or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} does not exist", file=path, fix=missing_fix or fix)
    try:
        frame = pd.read_csv(path, **read_kwargs)  # type: ignore[arg-type]
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(
            f"cannot parse {what}: {exc}",
            file=path,
            expected="a UTF-8 comma-separated file with a header row",
            fix=fix,
        ) from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} lacks the columns {missing}; found {list(frame.columns)}",
            file=path,
            expected=f"the columns {list(required)}",
            fix=fix,
        )
    return frame


def csv_row(index: int) -> int:
    """The row number a spreadsheet user sees for a 0-based data row (header is row 1)."""
    return int(index) + 2


def split_missing(
    frame: pd.DataFrame,
    root: Path,
    *,
    source: str | PathLike[str],
    on_missing: str,
    rows: Sequence[int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate rows whose ``image`` file is missing under ``root``.

    Args:
        frame: rows with an ``image`` column (paths relative to ``root``).
        root: the folder image paths are relative to.
        source: the file the rows came from (named in every message).
        on_missing: ``"raise"`` or ``"exclude"``.
        rows: the source row number of each frame row (default: spreadsheet rows).

    Returns:
        ``(kept rows, excluded rows)``; ``excluded`` has ``EXCLUDED_COLUMNS``.

    Raises:
        ManyErrors: with ``on_missing="raise"``, one ``DataError`` per missing file.
    """
    check_on_missing(on_missing)
    rows = list(rows) if rows is not None else [csv_row(i) for i in range(len(frame))]
    exists = [(root / p).is_file() for p in frame["image"]]
    missing_pos = [i for i, ok in enumerate(exists) if not ok]
    empty = pd.DataFrame(columns=EXCLUDED_COLUMNS)
    if not missing_pos:
        return frame.reset_index(drop=True), empty
    if on_missing == "raise" or len(missing_pos) == len(frame):
        # Excluding every row would hide a wrong root behind an empty dataset.
        errors = [
            DataError(
                f"image file {frame['image'].iloc[i]!r} does not exist",
                file=source,
                row=rows[i],
                column="image",
                expected=f"a file at {root / frame['image'].iloc[i]}",
                fix="restore the file, fix the path or root, or pass on_missing='exclude' to "
                "leave these rows out (they are then listed in Manifest.excluded)",
            )
            for i in missing_pos
        ]
        summary = (
            f"{len(errors)} of {len(frame)} rows of {str(source)!r} point at missing image files "
            f"under {str(root)!r}"
        )
        if len(missing_pos) == len(frame):
            summary += " (none was found: is the image root right?)"
        raise ManyErrors(summary, errors)  # type: ignore[arg-type]
    excluded = pd.DataFrame(
        {
            "file": str(source),
            "row": [rows[i] for i in missing_pos],
            "image": frame["image"].iloc[missing_pos].astype(str).to_numpy(),
            "label": frame["label"].iloc[missing_pos].astype(str).to_numpy()
            if "label" in frame.columns
            else "",
            "reason": [f"{MISSING_IMAGE}: {root / frame['image'].iloc[i]}" for i in missing_pos],
        }
    )
    warnings.warn(
        f"{len(missing_pos)} of {len(frame)} rows of {str(source)!r} were excluded because their "
        f"image file is missing (first: {excluded['image'].iloc[0]!r}); they are listed in "
        "Manifest.excluded",
        MissingImagesWarning,
        stacklevel=3,
    )
    return frame[exists].reset_index(drop=True), excluded


def concat_excluded(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack excluded-row tables from several source files."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=EXCLUDED_COLUMNS)
    return pd.concat(parts, ignore_index=True)[EXCLUDED_COLUMNS]


def make_manifest(
    frame: pd.DataFrame, root: Path, name: str, excluded: pd.DataFrame | None = None
) -> Manifest:
    """Build the Manifest, carrying the excluded rows along."""
    if excluded is None:
        excluded = pd.DataFrame(columns=EXCLUDED_COLUMNS)
    return Manifest(frame.reset_index(drop=True), root, name, excluded=excluded)


def normalise_sex(values: pd.Series) -> pd.Series:
    """``male``/``female``; ``unknown``, blanks and NaN become missing (one spelling everywhere)."""
    s = values.astype("object").where(values.notna(), None)
    s = s.map(lambda v: None if v is None else str(v).strip().lower())
    return s.where(s.isin(["male", "female"]), None).astype("object")


def numeric_age(values: pd.Series) -> pd.Series:
    """Ages as floats; ``unknown``/blank become NaN."""
    return pd.to_numeric(values, errors="coerce").astype(float)
