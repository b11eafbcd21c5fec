"""HAM10000: the metadata CSV plus its image folder(s), with the DermaMNIST split.

Two layouts are read:

* the **original** download: ``HAM10000_metadata.csv`` and the JPEGs in one or
  more folders (Kaggle: ``HAM10000_images_part_1/`` and ``_part_2/``); images
  are found by ``image_id`` anywhere under the root;
* the **shared-data manifest** (``ham10000_images_200x150/manifest.csv``) that
  already joins metadata, file name and the DermaMNIST split.

Either way the acquisition source (``dataset`` column: rosendahl, vidir_modern,
vidir_molemax, vienna_dias) becomes ``site``, and ``dx_type``, ``age``, ``sex``
and ``localization`` are kept for subgroup analysis. The DermaMNIST split
(``dermamnist_split``) becomes ``split``; it leaks lesions, so train with
``assign_splits(strategy="lesion")`` and keep the predefined split only to
compare with published numbers.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.data.loaders._common import (
    IMAGE_SUFFIXES,
    check_on_missing,
    csv_row,
    make_manifest,
    normalise_sex,
    numeric_age,
    read_csv_checked,
    split_missing,
)
from skinml.data.manifest import Manifest, conform_labels

#: HAM10000 diagnosis codes in MedMNIST's label order (label i of dermamnist.npz).
HAM10000_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
METADATA_COLUMNS = ("lesion_id", "image_id", "dx")
SHARED_MANIFEST = "manifest.csv"
_METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata")
_FIX = (
    "point root at the folder that holds HAM10000_metadata.csv and the image folders "
    "(or the ham10000_images_200x150 folder with its manifest.csv)"
)


def load_ham10000(
    root: str | PathLike[str],
    *,
    metadata_csv: str | PathLike[str] | None = None,
    split_csv: str | PathLike[str] | None = None,
    on_missing: str = "raise",
    name: str = "ham10000",
) -> Manifest:
    """Load HAM10000 into a :class:`Manifest`.

    Args:
        root: the dataset folder (original download, or the shared 200×150 copy).
        metadata_csv: the metadata CSV when it is not ``root/HAM10000_metadata.csv``.
        split_csv: optional DermaMNIST split map (``split,index,image_id``) for the
            original layout; the shared manifest already carries it.
        on_missing: ``"raise"`` lists every row whose image is missing;
            ``"exclude"`` moves them to ``Manifest.excluded``.
        name: dataset name in the manifest.

    Returns:
        One row per image: ``label`` = ``dx``, ``site`` = source dataset, ``split`` =
        DermaMNIST split when known.

    Raises:
        DataError / ManyErrors: naming the CSV, row and file that is wrong.
    """
    check_on_missing(on_missing)
    root = Path(root)
    if metadata_csv is None and (root / SHARED_MANIFEST).is_file():
        return _load_shared_manifest(root, on_missing=on_missing, name=name)
    return _load_original(root, metadata_csv, split_csv, on_missing=on_missing, name=name)


def _load_shared_manifest(root: Path, *, on_missing: str, name: str) -> Manifest:
    path = root / SHARED_MANIFEST
    src = read_csv_checked(
        path,
        required=("image_id", "file", "lesion_id", "dx", "dermamnist_split"),
        what="the HAM10000 shared manifest",
        fix=_FIX,
        dtype={"image_id": str, "file": str, "lesion_id": str, "dx": str},
    )
    frame = _standard_columns(src, image=src["file"], source=path)
    frame["split"] = src["dermamnist_split"].map({"train": "train", "val": "val", "test": "test"})
    if "dermamnist_index" in src.columns:
        frame["dermamnist_index"] = src["dermamnist_index"]
    frame, excluded = split_missing(frame, root, source=path, on_missing=on_missing)
    return make_manifest(frame, root, name, excluded)


def _load_original(
    root: Path,
    metadata_csv: str | PathLike[str] | None,
    split_csv: str | PathLike[str] | None,
    *,
    on_missing: str,
    name: str,
) -> Manifest:
    path = Path(metadata_csv) if metadata_csv is not None else _find_metadata(root)
    src = read_csv_checked(
        path,
        required=METADATA_COLUMNS,
        what="the HAM10000 metadata CSV",
        fix=_FIX,
        dtype={"image_id": str, "lesion_id": str, "dx": str},
    )
    by_stem = _index_images(root)
    # Unknown image ids keep a conventional path so the missing-file report can name them.
    image = [by_stem.get(i, f"{i}.jpg") for i in src["image_id"]]
    frame = _standard_columns(src, image=pd.Series(image, index=src.index), source=path)
    if split_csv is not None:
        frame = _join_split(frame, Path(split_csv))
    rows = [csv_row(i) for i in range(len(frame))]
    frame, excluded = split_missing(frame, root, source=path, on_missing=on_missing, rows=rows)
    return make_manifest(frame, root, name, excluded)


def _standard_columns(src: pd.DataFrame, *, image: pd.Series, source: Path) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "image": image.astype(str).to_numpy(),
            "label": src["dx"].astype(str).str.strip().to_numpy(),
            "patient_id": pd.NA,  # HAM10000 has no patient ids; lesion ids stand in
            "lesion_id": src["lesion_id"].astype(str).to_numpy(),
            "site": src["dataset"].astype(str).to_numpy() if "dataset" in src else "unknown",
            "device": "unknown",
            "split": pd.NA,
            "image_id": src["image_id"].astype(str).to_numpy(),
        }
    )
    for col in ("dx_type", "localization"):
        if col in src.columns:
            frame[col] = src[col].astype("object").to_numpy()
    if "age" in src.columns:
        frame["age"] = numeric_age(src["age"]).to_numpy()
    if "sex" in src.columns:
        frame["sex"] = normalise_sex(src["sex"]).to_numpy()
    # dx is one of the seven codes; a synonym ("Melanoma") is mapped, anything else is named.
    return conform_labels(frame, HAM10000_CLASSES, source=source, name="HAM10000's classes")


def _find_metadata(root: Path) -> Path:
    for candidate in _METADATA_NAMES:
        if (root / candidate).is_file():
            return root / candidate
    hits = sorted(root.rglob("HAM10000_metadata*.csv")) if root.is_dir() else []
    if hits:
        return hits[0]
    # read_csv_checked turns the absent default into a message with the fix.
    return root / _METADATA_NAMES[0]


def _index_images(root: Path) -> dict[str, str]:
    """``image_id -> path relative to root`` for every image file under ``root``."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            out.setdefault(p.stem, p.relative_to(root).as_posix())
    return out


def _join_split(frame: pd.DataFrame, split_csv: Path) -> pd.DataFrame:
    split = read_csv_checked(
        split_csv,
        required=("split", "index", "image_id"),
        what="the DermaMNIST split map",
        fix="use dermamnist_split_info.csv (columns split,index,image_id) from "
        "Abhishek et al.'s Corrected-Skin-Image-Datasets",
        dtype={"image_id": str},
    )
    lookup = split.set_index("image_id")
    frame = frame.copy()
    frame["split"] = frame["image_id"].map(lookup["split"])
    frame["dermamnist_index"] = frame["image_id"].map(lookup["index"])
    return frame
