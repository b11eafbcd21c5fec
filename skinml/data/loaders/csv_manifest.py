"""Any manifest CSV: the contract's own format, or a table with differently named columns.

``read_manifest`` checks the contract; this loader also renames a user's
columns (``{"path": "image", "dx": "label"}``) and checks that every image file
exists, reporting all missing files at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from skinml.data.loaders._common import (
    check_on_missing,
    make_manifest,
    read_csv_checked,
    split_missing,
)
from skinml.data.manifest import REQUIRED_COLUMNS, Manifest, conform_labels, validate_manifest

_STR_COLUMNS = ("image", "label", "patient_id", "lesion_id", "site", "device")


def load_manifest_csv(
    path: str | PathLike[str],
    *,
    columns: Mapping[str, str] | None = None,
    root: str | PathLike[str] | None = None,
    on_missing: str = "raise",
    name: str | None = None,
    classes: Sequence[str] | None = None,
) -> Manifest:
    """Read a manifest CSV, rename columns, and check that every image exists.

    Args:
        path: the CSV.
        columns: ``{their column: contract column}``, e.g. ``{"path": "image", "dx": "label"}``.
        root: folder image paths are relative to (default: the CSV's folder).
        on_missing: ``"raise"`` or ``"exclude"`` for rows whose image file is missing.
        name: dataset name (default: the CSV's stem).
        classes: the dataset's fixed classes; labels are mapped onto them (or, when
            None, onto canonical diagnosis codes) through the diagnosis vocabulary.

    Raises:
        DataError / ManyErrors: naming the file, rows and columns at fault.
    """
    check_on_missing(on_missing)
    path = Path(path)
    columns = dict(columns or {})
    sources = {v: k for k, v in columns.items()}
    required = [sources.get(c, c) for c in REQUIRED_COLUMNS]
    frame = read_csv_checked(
        path,
        required=required,
        what="the manifest CSV",
        fix="name the columns image and label, or pass columns={'your_name': 'image', ...}",
        missing_fix="check the path of the manifest CSV (or the dataset folder given as root)",
        dtype={sources.get(c, c): str for c in _STR_COLUMNS},
        keep_default_na=True,
    ).rename(columns=columns)
    frame = conform_labels(frame, classes, source=path)
    frame = validate_manifest(frame, source=str(path))
    base = Path(root) if root is not None else path.parent
    frame, excluded = split_missing(frame, base, source=path, on_missing=on_missing)
    return make_manifest(frame, base, name or path.stem, excluded)
