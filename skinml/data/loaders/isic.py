"""ISIC challenge layouts: one-hot ground-truth CSVs, image folders, age/sex CSVs.

ISIC challenges publish labels as one column per class holding 0/1 (2017:
``melanoma``, ``seborrheic_keratosis``, and a row of zeros means nevus;
2018/2019: ``MEL``, ``NV``, ...). :func:`load_isic_onehot` reads any of them;
:func:`load_isic2017` puts the three official ISIC 2017 Part 3 splits into one
manifest with their age/sex metadata joined.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.data.loaders._common import (
    check_on_missing,
    concat_excluded,
    csv_row,
    make_manifest,
    normalise_sex,
    numeric_age,
    read_csv_checked,
    split_missing,
)
from skinml.data.manifest import Manifest
from skinml.errors import DataError, ManyErrors

ISIC2017_CLASSES = ("melanoma", "seborrheic_keratosis", "nevus")
#: (split, ground truth CSV, image folder, metadata CSV) of the ISIC 2017 Part 3 release.
ISIC2017_FILES = (
    (
        "train",
        "ISIC-2017_Training_Part3_GroundTruth.csv",
        "ISIC-2017_Training_Data",
        "ISIC-2017_Training_Data_metadata.csv",
    ),
    (
        "val",
        "ISIC-2017_Validation_Part3_GroundTruth.csv",
        "ISIC-2017_Validation_Data",
        "ISIC-2017_Validation_Data_metadata.csv",
    ),
    (
        "test",
        "ISIC-2017_Test_v2_Part3_GroundTruth.csv",
        "ISIC-2017_Test_v2_Data",
        "ISIC-2017_Test_v2_Data_metadata.csv",
    ),
)
_ID_COLUMNS = ("image_id", "image", "isic_id")
_AGE_COLUMNS = ("age_approximate", "age_approx", "age")


def load_isic_onehot(
    ground_truth_csv: str | PathLike[str],
    image_dir: str | PathLike[str],
    *,
    root: str | PathLike[str] | None = None,
    metadata_csv: str | PathLike[str] | None = None,
    split: str | None = None,
    default_class: str | None = None,
    image_suffix: str = ".jpg",
    site: str = "isic_archive",
    on_missing: str = "raise",
    name: str = "isic",
) -> Manifest:
    """Load one ISIC one-hot ground-truth CSV and its image folder.

    Args:
        ground_truth_csv: ``image_id`` (or ``image``) plus one 0/1 column per class.
        image_dir: the folder with ``<image_id><image_suffix>`` files.
        root: folder that manifest paths are relative to (default: ``image_dir``'s parent).
        metadata_csv: optional ``image_id, age_approximate, sex`` table to join.
        split: the split these rows belong to (``train``/``val``/``test``), if official.
        default_class: label for rows whose one-hot columns are all 0 (ISIC 2017: ``nevus``);
            without it such rows are errors.
        image_suffix: file suffix of the images.
        site: value of the ``site`` column.
        on_missing: ``"raise"`` or ``"exclude"`` for rows whose image file is missing.
        name: dataset name.

    Raises:
        DataError / ManyErrors: every bad row named (non-0/1 values, several classes
        set, no class set without ``default_class``, missing image files).
    """
    check_on_missing(on_missing)
    frame, excluded = _read_split(
        Path(ground_truth_csv),
        Path(image_dir),
        Path(root) if root is not None else Path(image_dir).parent,
        metadata_csv=Path(metadata_csv) if metadata_csv is not None else None,
        split=split,
        default_class=default_class,
        image_suffix=image_suffix,
        site=site,
        on_missing=on_missing,
    )
    root_path = Path(root) if root is not None else Path(image_dir).parent
    return make_manifest(frame, root_path, name, excluded)


def load_isic2017(
    root: str | PathLike[str], *, on_missing: str = "raise", name: str = "isic2017"
) -> Manifest:
    """Load ISIC 2017 Part 3 (train 2000 / val 150 / test 600) with the official splits.

    Labels are ``melanoma``, ``seborrheic_keratosis`` and ``nevus`` (a row of zeros).
    Age and sex are joined where the metadata CSV exists (train and val).
    Problems in all three splits are reported together.
    """
    check_on_missing(on_missing)
    root = Path(root)
    frames, excluded, errors = [], [], []
    for split, gt, images, meta in ISIC2017_FILES:
        meta_path = root / meta
        try:
            frame, exc = _read_split(
                root / gt,
                root / images,
                root,
                metadata_csv=meta_path if meta_path.is_file() else None,
                split=split,
                default_class="nevus",
                image_suffix=".jpg",
                site="isic_archive",
                on_missing=on_missing,
            )
        except ManyErrors as err:
            errors.extend(err.errors)
            continue
        except DataError as err:
            errors.append(err)
            continue
        frames.append(frame)
        excluded.append(exc)
    if errors:
        raise ManyErrors(f"ISIC 2017 under {str(root)!r} has problems", errors)
    return make_manifest(
        pd.concat(frames, ignore_index=True), root, name, concat_excluded(excluded)
    )


def _read_split(
    gt_path: Path,
    image_dir: Path,
    root: Path,
    *,
    metadata_csv: Path | None,
    split: str | None,
    default_class: str | None,
    image_suffix: str,
    site: str,
    on_missing: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    fix = "point at the official ISIC ground-truth CSV (image_id plus one 0/1 column per class)"
    gt = read_csv_checked(gt_path, required=(), what="the ISIC ground-truth CSV", fix=fix)
    id_col = next((c for c in _ID_COLUMNS if c in gt.columns), None)
    if id_col is None:
        raise DataError(
            f"no image id column; found {list(gt.columns)}",
            file=gt_path,
            expected=f"one of {list(_ID_COLUMNS)}",
            fix=fix,
        )
    gt[id_col] = gt[id_col].astype(str)
    labels = _decode_onehot(gt, id_col, gt_path, default_class)
    try:
        image_rel = image_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        image_rel = image_dir.resolve().as_posix()
    frame = pd.DataFrame(
        {
            "image": [f"{image_rel}/{i}{image_suffix}" for i in gt[id_col]],
            "label": labels,
            "patient_id": pd.NA,
            "lesion_id": pd.NA,
            "site": site,
            "device": "unknown",
            "split": split if split is not None else pd.NA,
            "image_id": gt[id_col].to_numpy(),
        }
    )
    frame = _join_metadata(frame, metadata_csv)
    rows = [csv_row(i) for i in range(len(frame))]
    return split_missing(frame, root, source=gt_path, on_missing=on_missing, rows=rows)


def _decode_onehot(
    gt: pd.DataFrame, id_col: str, path: Path, default_class: str | None
) -> list[str]:
    class_cols = [c for c in gt.columns if c != id_col]
    if not class_cols and default_class is None:
        raise DataError("no class columns", file=path, expected="one 0/1 column per class")
    values = gt[class_cols].apply(pd.to_numeric, errors="coerce")
    errors: list[DataError] = []
    bad = values.isna() | ~values.isin([0, 1])
    for i, col in zip(*np.nonzero(bad.to_numpy()), strict=True):
        errors.append(
            DataError(
                f"value {gt.iat[i, gt.columns.get_loc(class_cols[col])]!r} is not 0 or 1",
                file=path,
                row=csv_row(i),
                column=class_cols[col],
                expected="0 or 1 (0.0/1.0) in every class column",
            )
        )
    labels: list[str] = []
    ones = values.fillna(0).to_numpy() >= 0.5
    for i, row in enumerate(ones):
        hit = [class_cols[j] for j in np.flatnonzero(row)]
        if len(hit) == 1:
            labels.append(hit[0])
        elif not hit and default_class is not None:
            labels.append(default_class)
        else:
            problem = (
                f"{len(hit)} classes set ({', '.join(hit)})" if hit else "no class column is 1"
            )
            errors.append(
                DataError(
                    f"image {gt.at[i, id_col]!r}: {problem}",
                    file=path,
                    row=csv_row(i),
                    expected="exactly one class column equal to 1"
                    + ("" if default_class is None else f", or none for {default_class!r}"),
                    fix="correct the ground truth row",
                )
            )
            labels.append("")
    if errors:
        raise ManyErrors(f"ground truth {str(path)!r} has invalid rows", errors)  # type: ignore[arg-type]
    return labels


def _join_metadata(frame: pd.DataFrame, metadata_csv: Path | None) -> pd.DataFrame:
    frame = frame.copy()
    frame["age"] = np.nan
    frame["sex"] = None
    if metadata_csv is None:
        return frame
    meta = read_csv_checked(
        metadata_csv,
        required=("image_id",),
        what="the ISIC metadata CSV",
        fix="use the challenge's *_metadata.csv (image_id, age_approximate, sex)",
        dtype={"image_id": str},
    ).drop_duplicates("image_id")
    meta = meta.set_index("image_id")
    age_col = next((c for c in _AGE_COLUMNS if c in meta.columns), None)
    if age_col is not None:
        frame["age"] = numeric_age(frame["image_id"].map(meta[age_col])).to_numpy()
    if "sex" in meta.columns:
        frame["sex"] = normalise_sex(frame["image_id"].map(meta["sex"])).to_numpy()
    return frame
