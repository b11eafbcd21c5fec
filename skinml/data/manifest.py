"""The image manifest: the one table every image dataset is turned into.

Columns (PRODUCT.md): ``image`` (path relative to the manifest), ``label``,
``patient_id``, ``lesion_id``, ``site``, ``device``, optional ``split``, and
any further metadata (``age``, ``sex``, ``localization``, ``fitzpatrick``...).
Loaders produce a :class:`Manifest`; training, teaching, QC and ingest consume it.
Loaders put ``label`` through the shared diagnosis vocabulary
(:func:`conform_labels`): onto the dataset's fixed classes where it has them,
else onto canonical codes, so one diagnosis never arrives as two classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.errors import DataError, ManyErrors
from skinml.textfiles import not_utf8
from skinml.vocabulary import LabelSpace, map_labels

REQUIRED_COLUMNS = ("image", "label")
MANIFEST_COLUMNS = ("image", "label", "patient_id", "lesion_id", "site", "device", "split")
SPLITS = ("train", "val", "test")


@dataclass
class Manifest:
    """A validated manifest table and the folder its image paths are relative to.

    Attributes:
        frame: one row per image, with at least the ``MANIFEST_COLUMNS``.
        root: folder that ``image`` paths are relative to.
        name: dataset name (used in cards, run names and errors).
        excluded: rows a loader left out, each with the reason (never silent).
    """

    frame: pd.DataFrame
    root: Path
    name: str = "manifest"
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "reason"]))

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.frame = validate_manifest(self.frame, source=self.name)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def classes(self) -> list[str]:
        """Sorted class labels present in the manifest."""
        return sorted(self.frame["label"].astype(str).unique())

    def paths(self) -> list[Path]:
        """Absolute image paths, in row order."""
        return [self.root / p for p in self.frame["image"]]

    def subset(self, mask: pd.Series | list[bool]) -> Manifest:
        """A manifest of the selected rows (index reset, same root and name)."""
        return Manifest(self.frame[mask].reset_index(drop=True), self.root, self.name)

    def split(self, name: str) -> Manifest:
        """Rows whose ``split`` column equals ``name``."""
        if self.frame["split"].isna().all():
            raise DataError(
                f"manifest {self.name!r} has no split column values",
                fix="assign splits with skinml.data.splits.assign_splits first",
            )
        return self.subset(self.frame["split"] == name)


def cluster_unit(frame: pd.DataFrame) -> str:
    """What a ``patient_id`` cluster really is in a validated manifest, in words.

    Missing patient IDs fall back to lesion IDs (and those to the image), so a bootstrap
    "over patients" on HAM10000, which has no patient IDs, resamples lesions. Reports say so.
    """
    patients = frame["patient_id"].astype(str)
    if (patients == frame["image"].astype(str)).all():
        return "images"
    if (patients == frame["lesion_id"].astype(str)).all():
        return "lesions"
    return "patients"


def validate_manifest(frame: pd.DataFrame, *, source: str = "manifest") -> pd.DataFrame:
    """Check the manifest contract and fill optional columns.

    Missing ``patient_id`` falls back to ``lesion_id``, missing ``lesion_id`` to
    the image path (each image its own group), so grouped splits stay correct
    though conservative. All problems are reported together.

    Raises:
        DataError / ManyErrors: naming the column or rows that break the contract.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing required columns {missing}; found {list(frame.columns)}",
            file=source,
            expected=f"at least the columns {list(REQUIRED_COLUMNS)}",
            fix="rename your columns (e.g. 'path'->'image', 'dx'->'label') or use a loader",
        )
    df = frame.copy()
    problems: list[DataError] = []
    for col in REQUIRED_COLUMNS:
        blank = df[col].isna() | (df[col].astype(str).str.strip() == "")
        for i in df.index[blank]:
            problems.append(DataError(f"empty {col!r}", file=source, row=_row(i), column=col))
    dup = df["image"].duplicated(keep=False) & df["image"].notna()
    for i in df.index[dup]:
        problems.append(
            DataError(
                f"image {df.at[i, 'image']!r} listed more than once",
                file=source,
                row=_row(i),
                column="image",
                fix="list every image once",
            )
        )
    if "split" in df.columns:
        bad = df["split"].notna() & ~df["split"].isin(SPLITS)
        for i in df.index[bad]:
            problems.append(
                DataError(
                    f"unknown split {df.at[i, 'split']!r}",
                    file=source,
                    row=_row(i),
                    column="split",
                    expected=f"one of {SPLITS} or empty",
                )
            )
    if problems:
        raise ManyErrors(f"manifest {source!r} breaks the manifest contract", problems)
    df["image"] = df["image"].astype(str)
    df["label"] = df["label"].astype(str)
    if "lesion_id" not in df.columns:
        df["lesion_id"] = df["image"]
    df["lesion_id"] = df["lesion_id"].fillna(df["image"]).astype(str)
    if "patient_id" not in df.columns:
        df["patient_id"] = df["lesion_id"]
    df["patient_id"] = df["patient_id"].fillna(df["lesion_id"]).astype(str)
    for col in ("site", "device"):
        if col not in df.columns:
            df[col] = "unknown"
        df[col] = df[col].fillna("unknown").astype(str)
    if "split" not in df.columns:
        df["split"] = pd.NA
    ordered = list(MANIFEST_COLUMNS) + [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return df[ordered].reset_index(drop=True)


def conform_labels(
    frame: pd.DataFrame,
    classes: Sequence[str] | None = None,
    *,
    source: str | PathLike[str],
    rows: Sequence[int] | None = None,
    name: str = "the dataset's classes",
) -> pd.DataFrame:
    """``frame`` with every non-blank ``label`` mapped through the diagnosis vocabulary.

    With ``classes`` (a dataset's fixed class list, a model's classes) labels
    become those classes (``"Naevus"`` -> ``nevus`` for ISIC 2017); without, a
    label the table knows becomes its canonical code (``"Melanoma"`` -> ``mel``)
    and any other label is kept as written. Blank labels are left for
    :func:`validate_manifest` to report.

    Args:
        frame: rows with a ``label`` column.
        classes: the context's classes, or None for an open vocabulary.
        source: the file, for messages.
        rows: each row's number as the user sees it (default: spreadsheet rows).
        name: what the classes are called in messages.

    Raises:
        ManyErrors: with ``classes``, one error per row whose label fits none of them,
            listing the classes and pointing at the diagnosis table.
    """
    if "label" not in frame.columns:
        return frame
    text = frame["label"].astype("string").str.strip()
    filled = (text.notna() & (text != "")).to_numpy()
    if not filled.any():
        return frame
    rows = [_row(i) for i in range(len(frame))] if rows is None else list(rows)
    values = text[filled].astype(str).tolist()
    mapped = map_labels(
        values,
        LabelSpace(classes, name=name),
        file=source,
        column="label",
        rows=[r for r, ok in zip(rows, filled, strict=True) if ok],
        what="label",
    )
    out = frame.copy()
    out["label"] = out["label"].astype(object)
    out.loc[filled, "label"] = mapped
    return out


def _row(index: object) -> int:
    # Report 1-based data rows as a spreadsheet user sees them (header is row 1).
    return int(index) + 2 if isinstance(index, int) else index  # type: ignore[return-value]


def read_manifest(
    path: str | PathLike[str], *, name: str | None = None, classes: Sequence[str] | None = None
) -> Manifest:
    """Read a manifest CSV; image paths are relative to the CSV's folder.

    Labels go through :func:`conform_labels`: onto ``classes`` when given (a
    model's or a dataset's class list), else onto canonical diagnosis codes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("manifest file does not exist", file=path, fix="check the path")
    try:
        frame = pd.read_csv(
            path,
            dtype={
                "image": str,
                "label": str,
                "patient_id": str,
                "lesion_id": str,
                "site": str,
                "device": str,
            },
        )
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"cannot parse CSV: {exc}",
            file=path,
            expected="a UTF-8 comma-separated file with a header row",
        ) from exc
    frame = conform_labels(frame, classes, source=path)
    return Manifest(validate_manifest(frame, source=str(path)), path.parent, name or path.stem)


def write_manifest(manifest: Manifest, path: str | PathLike[str]) -> Path:
    """Write the manifest CSV with image paths made relative to its new location."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = manifest.frame.copy()
    absolute = [manifest.root / p for p in df["image"]]
    df["image"] = [relative_path(p, path.parent) for p in absolute]
    df.to_csv(path, index=False)
    return path


def relative_path(p: Path, base: Path) -> str:
    """``p`` relative to folder ``base`` in POSIX form (``../data/x.jpg``), for portable CSVs."""
    import os

    return Path(os.path.relpath(p.resolve(), base.resolve())).as_posix()
