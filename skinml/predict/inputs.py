"""Turn what the clinician typed (an image, a folder or a CSV list) into one item per output row.

Every input the user named becomes exactly one row of ``predictions.csv``;
problems that are known before reading (an empty CSV cell, a missing file) are
carried on the item so that they become error rows rather than disappearing.
A model with a patient-metadata input needs a CSV: each item then carries its
row's metadata cells, which the predictor encodes (bad cells become error rows).
"""

from __future__ import annotations

import csv
import difflib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from skinml.errors import DataError
from skinml.textfiles import read_utf8

#: File suffixes a folder scan treats as images (case-insensitive).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jfif", ".ppm"}
)
#: CSV columns that may name the image, in order of preference.
PATH_COLUMNS = ("image", "path", "file", "filename", "image_path")


@dataclass(frozen=True)
class InputItem:
    """One requested prediction.

    Attributes:
        input: the path exactly as the user gave it (CSV cell, relative folder path...).
        file: the resolved path that will be read, or None when there is none.
        error: a reason known before reading; the row will be an error row.
        metadata: the row's patient-metadata cells (column -> text), for models that need them.
        row: the CSV row number (header = row 1), when the item came from a CSV.
    """

    input: str
    file: Path | None
    error: str | None = None
    metadata: Mapping[str, str] | None = None
    row: int | None = None


@dataclass
class InputList:
    """The expanded inputs plus what a folder scan deliberately left out (reported, not lost)."""

    items: list[InputItem]
    skipped: list[Path] = field(default_factory=list)
    source_kind: str = "list"


def expand_inputs(
    source: str | PathLike[str] | Iterable[str | PathLike[str]],
    *,
    metadata_columns: Sequence[str] = (),
) -> InputList:
    """Expand an image path, a folder (recursive), a CSV file or a list of paths.

    Folder scans keep files with an image suffix (see :data:`IMAGE_SUFFIXES`)
    and list the others in ``skipped`` so the caller can say how many were left
    out. Explicitly named files (single path, CSV rows, list entries) are never
    skipped: whatever they are, they get a row.

    Args:
        source: what the user gave.
        metadata_columns: columns the model needs beside the image (age, sex...): the
            input must then be a CSV that has them.

    Raises:
        DataError: when ``source`` does not exist, a CSV has no path column, or the model
            needs metadata columns that the input does not have.
    """
    if metadata_columns:
        path = Path(source) if isinstance(source, str | PathLike) else None
        if path is None or path.suffix.lower() not in {".csv", ".tsv"} or not path.is_file():
            raise DataError(
                "this model also needs patient metadata for every image, so the input must "
                "be a CSV file",
                file=path if path is not None else None,
                expected=f"a CSV with the columns {['image', *metadata_columns]} (empty cells "
                "mean unknown)",
                fix="list the images in a CSV with those columns; `skinml-predict MODEL "
                "--describe` shows the values each column accepts",
            )
        return InputList(read_input_csv(path, metadata_columns=metadata_columns), source_kind="csv")
    if not isinstance(source, str | PathLike):
        items = [_item(str(p), Path(p)) for p in source]
        return InputList(items, source_kind="list")
    path = Path(source)
    if path.is_dir():
        return _scan_folder(path)
    if path.suffix.lower() in {".csv", ".tsv"} and path.is_file():
        return InputList(read_input_csv(path), source_kind="csv")
    if not path.exists():
        raise DataError(
            "input does not exist",
            file=path,
            expected="an image file, a folder of images, or a CSV listing images",
            fix="check the path",
        )
    return InputList([_item(str(source), path)], source_kind="image")


def _item(text: str, path: Path) -> InputItem:
    if not path.exists():
        return InputItem(text, path, "file does not exist")
    return InputItem(text, path)


def _scan_folder(root: Path) -> InputList:
    items: list[InputItem] = []
    skipped: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in dirnames:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                # Named like an image, so the user expects a row for it; its contents
                # (if any) are still scanned.
                p = Path(dirpath) / name
                items.append(
                    InputItem(p.relative_to(root).as_posix(), p, "a folder named like an image")
                )
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith("."):
                skipped.append(p)
            elif p.suffix.lower() in IMAGE_SUFFIXES:
                items.append(InputItem(p.relative_to(root).as_posix(), p))
            else:
                skipped.append(p)
    return InputList(items, skipped, source_kind="folder")


def read_input_csv(
    path: str | PathLike[str], *, metadata_columns: Sequence[str] = ()
) -> list[InputItem]:
    """Read a CSV that lists images; relative paths are relative to the CSV's folder.

    The path column is the first of :data:`PATH_COLUMNS` present (so a skinml
    manifest works as is). Blank cells become error rows naming the CSV row.
    ``metadata_columns`` (matched ignoring case and surrounding spaces) are carried on
    each item; their values are checked later, row by row.

    Raises:
        DataError: when the file is not UTF-8, has no header, none of the path columns,
            or lacks a metadata column (named, with the closest column it does have).
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(read_utf8(path), newline=""), delimiter=delimiter)
    header = list(reader.fieldnames or [])
    lowered = {h.strip().lower(): h for h in header}
    column = next((lowered[c] for c in PATH_COLUMNS if c in lowered), None)
    if column is None:
        raise DataError(
            f"no column naming the images; found columns {header or 'none'}",
            file=path,
            expected=f"a header with one of the columns {list(PATH_COLUMNS)}",
            fix="add a header row such as 'image' above the list of image paths",
        )
    meta_cols = _metadata_header(path, header, lowered, metadata_columns)
    items = []
    for rowno, row in enumerate(reader, start=2):
        raw = row.get(column)
        text = "" if raw is None else raw.strip()
        cells = (
            {name: row.get(h) or "" for name, h in meta_cols.items()} if metadata_columns else None
        )
        if not text:
            items.append(
                InputItem(text, None, f"CSV row {rowno}: empty {column!r} cell", cells, rowno)
            )
            continue
        p = Path(text)
        resolved = p if p.is_absolute() else path.parent / p
        item = _item(text, resolved)
        items.append(InputItem(item.input, item.file, item.error, cells, rowno))
    return items


def _metadata_header(
    path: Path, header: list[str], lowered: dict[str, str], needed: Sequence[str]
) -> dict[str, str]:
    """Map each needed metadata column to its header cell, or say which are missing."""
    found = {
        name: lowered[name.strip().lower()] for name in needed if name.strip().lower() in lowered
    }
    missing = [name for name in needed if name not in found]
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
            if close:
                hints.append(f"{lowered[close[0]]!r} for {name!r}?")
        raise DataError(
            f"the model needs the metadata columns {list(needed)}; missing {missing}"
            + (f" (misspelled? {' '.join(hints)})" if hints else "")
            + f"; the CSV has {header}",
            file=path,
            expected=f"a header with the columns {['image', *needed]} (empty cells mean unknown)",
            fix="add or rename the columns; `skinml-predict MODEL --describe` shows the values "
            "each column accepts",
        )
    return found
