"""ISIC Archive UDA-1 (CC0): the full-resolution originals and their metadata.

``metadata.csv`` describes all 557 UDA-1 images; only the rows with
``included == 1`` have an image file in the folder (113 of them, one per
resolution × diagnosis). The others are not missing files but images that
were never copied, so they are left out by design and counted in
``Manifest.excluded`` (reason ``not included``), not reported as errors.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.data.loaders._common import (
    EXCLUDED_COLUMNS,
    check_on_missing,
    concat_excluded,
    csv_row,
    make_manifest,
    normalise_sex,
    numeric_age,
    read_csv_checked,
    split_missing,
)
from skinml.data.manifest import Manifest, conform_labels

UDA1_CLASSES = ("nevus", "melanoma")
UDA1_SITE = "isic_archive"


def uda1_frame(metadata: pd.DataFrame, image_dir: str = "images") -> pd.DataFrame:
    """Manifest rows for UDA-1 metadata rows (pure: no file access).

    UDA-1 records neither lesion nor patient ids, so each image is its own lesion
    and patient; age, sex, the confirmation type and the original pixel size are kept.
    """
    ids = metadata["image_id"].astype(str)
    return pd.DataFrame(
        {
            "image": [f"{image_dir}/{i}.jpg" for i in ids],
            "label": metadata["diagnosis"].astype(str).to_numpy(),
            # Not recorded: the manifest contract then makes each image its own group.
            "patient_id": pd.NA,
            "lesion_id": pd.NA,
            "site": UDA1_SITE,
            "device": "unknown",
            "split": pd.NA,
            "image_id": ids.to_numpy(),
            "isic_id": metadata["isic_id"].astype(str).to_numpy(),
            "benign_malignant": metadata["benign_malignant"].astype(str).to_numpy(),
            "diagnosis_confirm_type": metadata["diagnosis_confirm_type"]
            .astype("object")
            .where(metadata["diagnosis_confirm_type"].notna(), None)
            .to_numpy(),
            "age": numeric_age(metadata["age_approx"]).to_numpy(),
            "sex": normalise_sex(metadata["sex"]).to_numpy(),
            "original_width": metadata["pixels_x"].astype(int).to_numpy(),
            "original_height": metadata["pixels_y"].astype(int).to_numpy(),
        }
    )


def load_isic_uda1_archive(
    root: str | PathLike[str], *, on_missing: str = "raise", name: str = "isic_uda1"
) -> Manifest:
    """Load the full-resolution UDA-1 originals (``root/metadata.csv`` + ``root/images``).

    For the small copy shipped with skinml use :func:`skinml.datasets.load_isic_uda1`.
    """
    check_on_missing(on_missing)
    root = Path(root)
    path = root / "metadata.csv"
    meta = read_csv_checked(
        path,
        required=(
            "image_id",
            "isic_id",
            "diagnosis",
            "benign_malignant",
            "diagnosis_confirm_type",
            "age_approx",
            "sex",
            "pixels_x",
            "pixels_y",
            "included",
        ),
        what="the UDA-1 metadata CSV",
        fix="point root at the isic_archive_uda1 folder (metadata.csv and images/)",
        dtype={"image_id": str, "isic_id": str, "diagnosis": str},
    )
    included = meta["included"].fillna(0).astype(int) == 1
    rows = [csv_row(i) for i in meta.index[included]]
    frame = uda1_frame(meta[included].reset_index(drop=True))
    frame = conform_labels(frame, UDA1_CLASSES, source=path, rows=rows, name="UDA-1's classes")
    frame, missing = split_missing(frame, root, source=path, on_missing=on_missing, rows=rows)
    not_included = pd.DataFrame(
        {
            "file": str(path),
            "row": [csv_row(i) for i in meta.index[~included]],
            "image": meta.loc[~included, "image_id"].astype(str).to_numpy(),
            "label": meta.loc[~included, "diagnosis"].astype(str).to_numpy(),
            "reason": "not included: UDA-1 image not copied into this folder (included=0)",
        },
        columns=EXCLUDED_COLUMNS,
    )
    return make_manifest(frame, root, name, concat_excluded([missing, not_included]))
