"""Manifest labels go through the one diagnosis vocabulary: synonyms merge, fixed lists stay."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skinml.data.loaders.csv_manifest import load_manifest_csv
from skinml.data.loaders.ham10000 import HAM10000_CLASSES, load_ham10000
from skinml.data.manifest import read_manifest
from skinml.datasets import load_isic_uda1
from skinml.errors import ConfigError, ManyErrors
from skinml.training.data_setup import check_classes


def _manifest(tmp_path: Path, make_image, labels: list[str]) -> Path:
    rows = []
    for i, label in enumerate(labels):
        make_image(tmp_path / f"img/{i}.png", value=10 * i)
        rows.append({"image": f"img/{i}.png", "label": label, "lesion_id": f"L{i}"})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def test_one_diagnosis_spelt_four_ways_is_one_class(tmp_path: Path, make_image) -> None:
    path = _manifest(
        tmp_path, make_image, ["Melanoma", "mel", "MEL ", "malignant melanoma", "Naevus", "spitz"]
    )
    for manifest in (read_manifest(path), load_manifest_csv(path)):
        assert manifest.classes == ["mel", "nv", "spitz"]  # unknown to the table: kept as written
    fixed = read_manifest(path, classes=["melanoma", "nevus", "spitz"])
    assert fixed.frame["label"].tolist() == ["melanoma"] * 4 + ["nevus", "spitz"]


def test_a_label_outside_a_fixed_class_list_names_row_column_and_the_classes(
    tmp_path: Path, make_image
) -> None:
    path = _manifest(tmp_path, make_image, ["mel", "nv", "psoriasis"])
    with pytest.raises(ManyErrors) as err:
        load_manifest_csv(path, classes=["mel", "nv"])
    text = str(err.value)
    assert str(path) in text and "row 4" in text and "column 'label'" in text
    assert "'psoriasis' is not among the dataset's classes" in text and "['mel', 'nv']" in text
    assert "skinml-data vocabulary" in text


def test_ham10000_maps_synonyms_and_refuses_unknown_codes(tmp_path: Path, make_image) -> None:
    root = tmp_path / "ham"
    meta = pd.DataFrame(
        {
            "lesion_id": ["HAM_1", "HAM_2", "HAM_3"],
            "image_id": ["ISIC_01", "ISIC_02", "ISIC_03"],
            "dx": ["Melanoma", "nv", "BKL"],
            "dataset": "rosendahl",
        }
    )
    root.mkdir()
    meta.to_csv(root / "HAM10000_metadata.csv", index=False)
    for i in ("ISIC_01", "ISIC_02", "ISIC_03"):
        make_image(root / "images" / f"{i}.jpg")
    assert load_ham10000(root).frame["label"].tolist() == ["mel", "nv", "bkl"]
    meta.assign(dx=["mel", "SCC", "nv"]).to_csv(root / "HAM10000_metadata.csv", index=False)
    with pytest.raises(ManyErrors) as err:
        load_ham10000(root)
    text = str(err.value)
    assert "HAM10000_metadata.csv" in text and "row 3" in text and "'SCC'" in text
    assert str(sorted(HAM10000_CLASSES)) in text


def test_fixed_class_datasets_keep_their_codes() -> None:
    data = load_isic_uda1()
    assert data.manifest.classes == ["melanoma", "nevus"]  # not mel/nv: UDA-1's own names


def test_training_maps_labels_onto_data_classes(tmp_path: Path, make_image) -> None:
    manifest = read_manifest(_manifest(tmp_path, make_image, ["Melanoma", "naevus", "nv"]))
    conformed, classes, malignant = check_classes(manifest, ["melanoma", "nevus"], ["mel"])
    assert classes == ["melanoma", "nevus"] and malignant == ["melanoma"]
    assert conformed.frame["label"].tolist() == ["melanoma", "nevus", "nevus"]
    with pytest.raises(ConfigError, match=r"the data has classes \['nv'\]") as err:
        check_classes(manifest, ["mel", "bcc"], [])
    assert "one of data.classes ['bcc', 'mel']" in str(err.value)
    with pytest.raises(ConfigError, match="same diagnosis"):
        check_classes(manifest, ["mel", "melanoma", "nv"], [])
