"""Loaders on generated layouts: folder tree, manifest CSV, HAM10000, ISIC one-hot, MedMNIST npz."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinml.data.loaders import (
    MissingImagesWarning,
    SkippedFilesWarning,
    load_ham10000,
    load_image_folder,
    load_isic_onehot,
    load_manifest_csv,
    load_medmnist,
)
from skinml.data.loaders.medmnist import download_file
from skinml.errors import ConfigError, DataError, ManyErrors

# -- folder tree ------------------------------------------------------------------------


def test_folder_tree_labels_from_first_folder_and_lists_skipped_files(folder_tree: Path) -> None:
    with pytest.warns(SkippedFilesWarning, match="2 files"):
        m = load_image_folder(folder_tree, site="clinic")
    assert len(m) == 5
    # folder names go through the diagnosis vocabulary: "melanoma/" is the canonical mel
    assert m.frame["label"].value_counts().to_dict() == {"nv": 3, "mel": 2}
    assert "melanoma/sub/m0.png" in set(m.frame["image"])
    with pytest.warns(SkippedFilesWarning):
        fixed = load_image_folder(folder_tree, classes=["nevus", "melanoma"])
    assert fixed.frame["label"].value_counts().to_dict() == {"nevus": 3, "melanoma": 2}
    assert set(m.frame["site"]) == {"clinic"}
    reasons = dict(zip(m.excluded["image"], m.excluded["reason"], strict=True))
    assert "suffix '.txt'" in reasons["README.txt"]
    assert "no class folder" in reasons["stray.jpg"]


def test_folder_tree_without_class_folders_is_an_error(tmp_path: Path, make_image) -> None:
    make_image(tmp_path / "a.jpg")
    with pytest.raises(DataError, match="no images found in class sub-folders"):
        load_image_folder(tmp_path)


# -- manifest CSV -----------------------------------------------------------------------


def test_manifest_csv_loads_with_metadata(manifest_dir: Path) -> None:
    m = load_manifest_csv(manifest_dir / "manifest.csv")
    assert len(m) == 8
    assert m.root == manifest_dir
    assert list(m.frame.columns[:7]) == [
        "image",
        "label",
        "patient_id",
        "lesion_id",
        "site",
        "device",
        "split",
    ]
    assert m.frame["age"].tolist()[:2] == [30, 31]
    assert all(p.is_file() for p in m.paths())


def test_manifest_csv_renames_columns(tmp_path: Path, make_image) -> None:
    make_image(tmp_path / "x.jpg")
    pd.DataFrame({"path": ["x.jpg"], "dx": ["mel"]}).to_csv(tmp_path / "m.csv", index=False)
    m = load_manifest_csv(tmp_path / "m.csv", columns={"path": "image", "dx": "label"})
    assert m.frame.loc[0, "image"] == "x.jpg" and m.frame.loc[0, "label"] == "mel"


def test_missing_images_are_all_named_with_row_and_file(manifest_dir: Path) -> None:
    (manifest_dir / "img" / "02.png").unlink()
    (manifest_dir / "img" / "05.png").unlink()
    with pytest.raises(ManyErrors) as info:
        load_manifest_csv(manifest_dir / "manifest.csv")
    err = info.value
    assert len(err.errors) == 2
    text = str(err)
    # spreadsheet rows: header is row 1, so data row i is row i + 2
    assert "row 4" in text and "img/02.png" in text
    assert "row 7" in text and "img/05.png" in text
    assert "on_missing='exclude'" in text
    assert {e.row for e in err.errors} == {4, 7}


def test_missing_images_excluded_on_request_are_listed_not_silent(manifest_dir: Path) -> None:
    (manifest_dir / "img" / "02.png").unlink()
    with pytest.warns(MissingImagesWarning, match="1 of 8 rows"):
        m = load_manifest_csv(manifest_dir / "manifest.csv", on_missing="exclude")
    assert len(m) == 7
    assert m.excluded[["row", "image"]].to_dict("records") == [{"row": 4, "image": "img/02.png"}]
    assert m.excluded["reason"].iloc[0].startswith("missing image file")


def test_all_images_missing_raises_even_with_exclude(tmp_path: Path) -> None:
    pd.DataFrame({"image": ["a.jpg", "b.jpg"], "label": ["x", "y"]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    with pytest.raises(ManyErrors, match="is the image root right"):
        load_manifest_csv(tmp_path / "m.csv", on_missing="exclude")


def test_unknown_on_missing_value_is_refused(manifest_dir: Path) -> None:
    with pytest.raises(ConfigError, match="on_missing='skip'"):
        load_manifest_csv(manifest_dir / "manifest.csv", on_missing="skip")


def test_manifest_csv_missing_label_column(tmp_path: Path) -> None:
    pd.DataFrame({"image": ["a.jpg"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataError, match=r"lacks the columns \['label'\]"):
        load_manifest_csv(tmp_path / "m.csv")


# -- HAM10000 original layout -------------------------------------------------------------


def _ham_original(tmp_path: Path, write_image) -> Path:
    root = tmp_path / "ham"
    meta = pd.DataFrame(
        {
            "lesion_id": ["HAM_1", "HAM_1", "HAM_2", "HAM_3"],
            "image_id": ["ISIC_01", "ISIC_02", "ISIC_03", "ISIC_04"],
            "dx": ["mel", "mel", "nv", "bcc"],
            "dx_type": ["histo", "histo", "follow_up", "histo"],
            "age": [50, 50, None, 70],
            "sex": ["male", "male", "unknown", "female"],
            "localization": ["back", "back", "face", "trunk"],
            "dataset": ["rosendahl", "rosendahl", "vidir_molemax", "vidir_modern"],
        }
    )
    root.mkdir()
    meta.to_csv(root / "HAM10000_metadata.csv", index=False)
    write_image(root / "HAM10000_images_part_1" / "ISIC_01.jpg")
    write_image(root / "HAM10000_images_part_1" / "ISIC_02.jpg")
    write_image(root / "HAM10000_images_part_2" / "ISIC_03.jpg")
    write_image(root / "HAM10000_images_part_2" / "ISIC_04.jpg")
    pd.DataFrame(
        {
            "split": ["train", "val", "test", "train"],
            "index": [0, 0, 0, 1],
            "image_id": ["ISIC_01", "ISIC_02", "ISIC_03", "ISIC_04"],
        }
    ).to_csv(root / "split.csv", index=False)
    return root


def test_ham10000_original_layout_finds_images_in_part_folders(tmp_path: Path, make_image) -> None:
    root = _ham_original(tmp_path, make_image)
    m = load_ham10000(root, split_csv=root / "split.csv")
    f = m.frame.set_index("image_id")
    assert f.loc["ISIC_03", "image"] == "HAM10000_images_part_2/ISIC_03.jpg"
    assert f.loc["ISIC_01", "site"] == "rosendahl"
    assert f.loc["ISIC_02", "split"] == "val"
    assert pd.isna(f.loc["ISIC_03", "sex"])  # "unknown" becomes missing
    assert np.isnan(f.loc["ISIC_03", "age"])
    assert f.loc["ISIC_01", "patient_id"] == "HAM_1"  # lesion id stands in for patient
    assert {"dx_type", "localization"} <= set(m.frame.columns)


def test_ham10000_missing_image_names_metadata_row(tmp_path: Path, make_image) -> None:
    root = _ham_original(tmp_path, make_image)
    (root / "HAM10000_images_part_2" / "ISIC_04.jpg").unlink()
    with pytest.raises(ManyErrors) as info:
        load_ham10000(root)
    (err,) = info.value.errors
    assert err.row == 5 and "ISIC_04.jpg" in str(err)
    assert err.file is not None and err.file.endswith("HAM10000_metadata.csv")


def test_ham10000_without_metadata_says_where_to_point(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="HAM10000 metadata CSV does not exist"):
        load_ham10000(tmp_path)


# -- ISIC one-hot ground truth ---------------------------------------------------------------


def _isic(tmp_path: Path, write_image, rows: list[tuple[str, float, float]]) -> tuple[Path, Path]:
    images = tmp_path / "Training_Data"
    for image_id, *_ in rows:
        write_image(images / f"{image_id}.jpg")
    gt = tmp_path / "gt.csv"
    pd.DataFrame(rows, columns=["image_id", "melanoma", "seborrheic_keratosis"]).to_csv(
        gt, index=False
    )
    return gt, images


def test_isic_onehot_decodes_labels_and_joins_metadata(tmp_path: Path, make_image) -> None:
    gt, images = _isic(tmp_path, make_image, [("I1", 1.0, 0.0), ("I2", 0.0, 1.0), ("I3", 0.0, 0.0)])
    meta = tmp_path / "meta.csv"
    pd.DataFrame(
        {
            "image_id": ["I1", "I3"],
            "age_approximate": ["55", "unknown"],
            "sex": ["female", "unknown"],
        }
    ).to_csv(meta, index=False)
    m = load_isic_onehot(gt, images, metadata_csv=meta, split="train", default_class="nevus")
    f = m.frame.set_index("image_id")
    assert f["label"].to_dict() == {"I1": "melanoma", "I2": "seborrheic_keratosis", "I3": "nevus"}
    assert f.loc["I1", "age"] == 55 and np.isnan(f.loc["I3", "age"])
    assert f.loc["I1", "sex"] == "female" and pd.isna(f.loc["I2", "sex"])
    assert set(f["split"]) == {"train"}
    assert f.loc["I1", "image"] == "Training_Data/I1.jpg"


def test_isic_onehot_reports_every_bad_row(tmp_path: Path, make_image) -> None:
    gt, images = _isic(tmp_path, make_image, [("I1", 1.0, 1.0), ("I2", 0.0, 0.0), ("I3", 0.5, 0.0)])
    with pytest.raises(ManyErrors) as info:
        load_isic_onehot(gt, images)  # no default class: all-zero row is an error too
    text = str(info.value)
    assert "row 2" in text and "2 classes set" in text
    assert "row 3" in text and "no class column is 1" in text
    assert "row 4" in text and "not 0 or 1" in text


# -- MedMNIST npz ----------------------------------------------------------------------------


def _fake_npz(path: Path, n: tuple[int, int, int] = (6, 2, 3), size: int = 28) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, size, size, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(k) % 7).reshape(k, 1).astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return path


def test_medmnist_npz_becomes_pngs_and_manifest(tmp_path: Path) -> None:
    npz = _fake_npz(tmp_path / "dermamnist.npz")
    m = load_medmnist(npz, check_md5=False, cache_dir=tmp_path / "png", progress=False)
    assert len(m) == 11
    assert m.frame["split"].value_counts().to_dict() == {"train": 6, "test": 3, "val": 2}
    first = m.frame.iloc[0]
    assert first["image"] == "train/train_00000.png" and first["label"] == "akiec"
    assert m.frame.iloc[4]["label"] == "mel"
    with np.load(npz) as data:
        pixels = np.asarray(Image.open(m.paths()[1]))
        assert np.array_equal(pixels, data["train_images"][1])


def test_medmnist_cache_is_reused_when_the_npz_is_unchanged(tmp_path: Path) -> None:
    npz = _fake_npz(tmp_path / "dermamnist.npz")
    load_medmnist(npz, check_md5=False, cache_dir=tmp_path / "png", progress=False)
    png = tmp_path / "png" / "train" / "train_00000.png"
    stamp = png.stat().st_mtime_ns
    m = load_medmnist(npz, check_md5=False, cache_dir=tmp_path / "png", progress=False)
    assert len(m) == 11 and png.stat().st_mtime_ns == stamp


def test_medmnist_npz_with_missing_arrays_names_them(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="'train_labels'") as info:
        load_medmnist(tmp_path / "bad.npz", check_md5=False, progress=False)
    assert "train_images, train_labels, val_images" in str(info.value)


def test_medmnist_refuses_a_file_that_is_not_the_official_one(tmp_path: Path) -> None:
    npz = _fake_npz(tmp_path / "dermamnist.npz")
    with pytest.raises(DataError, match="not the official 0744692d530f8e62ec473284d019b0c7"):
        load_medmnist(npz, progress=False)


def test_medmnist_offline_without_file_explains_both_options() -> None:
    with pytest.raises(DataError, match="download=True") as info:
        load_medmnist(size=64)
    assert "dermamnist_64.npz" in str(info.value)


def test_download_checks_md5(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"dermamnist bytes")
    good = hashlib.md5(b"dermamnist bytes").hexdigest()
    out = download_file(src.as_uri(), tmp_path / "dl" / "f.npz", md5=good, progress=False)
    assert out.read_bytes() == b"dermamnist bytes"
    with pytest.raises(DataError, match=r"expected 0{32}"):
        download_file(src.as_uri(), tmp_path / "dl" / "g.npz", md5="0" * 32, progress=False)
    assert not (tmp_path / "dl" / "g.npz").exists()
    assert not list((tmp_path / "dl").glob("*.part"))


def test_medmnist_joins_ham10000_lesions_by_split_and_index(tmp_path: Path) -> None:
    from skinml.data.manifest import Manifest
    from skinml.data.splits import leakage_report

    npz = _fake_npz(tmp_path / "dermamnist.npz", n=(3, 1, 2))
    rows = []
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        for i in range(n):
            rows.append(
                {
                    "image": f"{split}{i}.jpg",
                    "label": ["akiec", "bcc", "bkl"][i % 7 % 3],
                    "lesion_id": "HAM_X" if i == 0 else f"HAM_{split}{i}",
                    "site": "rosendahl",
                    "split": split,
                    "dermamnist_index": i,
                    "image_id": f"ISIC_{split}{i}",
                }
            )
    ham = Manifest(pd.DataFrame(rows), tmp_path, "ham")
    m = load_medmnist(npz, check_md5=False, progress=False, metadata=ham)
    assert set(m.frame["site"]) == {"rosendahl"}
    assert m.frame.set_index("image").loc["val/val_00000.png", "image_id"] == "ISIC_val0"
    # lesion HAM_X has an image in each split: the join makes the leak visible
    assert leakage_report(m).n_leaking == 1
    bad = ham.frame.copy()
    bad.loc[0, "label"] = "vasc"
    with pytest.raises(DataError, match="1 disagree on the diagnosis"):
        load_medmnist(npz, check_md5=False, progress=False, metadata=Manifest(bad, tmp_path))
