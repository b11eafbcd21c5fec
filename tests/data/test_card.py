"""Dataset cards computed from manifests."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from skinml.data.card import DatasetCard, DatasetInfo, build_card
from skinml.data.loaders import load_manifest_csv
from skinml.data.splits import assign_splits

INFO = DatasetInfo(
    name="clinic",
    title="Clinic sample",
    class_names={"nv": "melanocytic nevus", "mel": "melanoma"},
    malignant=("mel",),
    licence="CC BY 4.0",
    citation="Us et al. 2026",
    caveats=("tiny",),
)


def test_card_counts_sites_metadata_and_leakage(manifest_dir) -> None:
    m = load_manifest_csv(manifest_dir / "manifest.csv")
    frame = m.frame.copy()
    frame["split"] = ["train", "train", "train", "test", "train", "train", "val", "val"]
    m.frame = frame
    card = build_card(m, INFO, fingerprint="ab" * 32)
    assert card.classes == ("nv", "mel")
    assert card.counts == {
        "train": {"mel": 2, "nv": 3},
        "test": {"mel": 1, "nv": 0},
        "val": {"mel": 1, "nv": 1},
    }
    assert card.splits == ["train", "val", "test"]
    assert card.n_images == 8 and card.n_lesions == 4 and card.n_patients == 3
    assert card.sites == {"A": 4, "B": 4}
    assert card.by_site == {"A": {"mel": 2, "nv": 2}, "B": {"mel": 2, "nv": 2}}
    # lesion L1 (rows 2, 3) and patient P1 (rows 3-5) are in train and test
    assert card.leakage == {"lesion_id": 1, "patient_id": 1}
    md = card.to_markdown()
    assert "| `mel` | melanoma | yes | 2 | 1 | 1 | 4 | 50.0% |" in md
    assert "| `nv` | melanocytic nevus | no | 3 | 1 | 0 | 4 | 50.0% |" in md
    assert "**1 lesions have images in more than one split**" in md
    assert "abab" in md and "CC BY 4.0" in md and "- tiny" in md
    assert "median 33.5 years" in md
    assert "| A | 2 | 2 | 4 | 50.0% |" in md


def test_card_after_grouped_split_reports_no_leakage(manifest_dir) -> None:
    m = assign_splits(load_manifest_csv(manifest_dir / "manifest.csv"), "lesion", 0.25, 0.25)
    card = build_card(m, INFO)
    assert card.leakage["lesion_id"] == 0
    assert "by `lesion_id`: none: splits are grouped" in card.to_markdown()


def test_card_is_frozen_and_serialisable(manifest_dir) -> None:
    card = build_card(load_manifest_csv(manifest_dir / "manifest.csv"), INFO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.name = "other"  # type: ignore[misc]
    d = json.loads(json.dumps(card.to_dict()))
    assert d["counts"] == {"unsplit": {"mel": 4, "nv": 4}}
    assert d["malignant"] == ["mel"] and d["leakage"] == {}
    assert DatasetCard(**{**card.__dict__}).to_dict() == card.to_dict()


def test_card_counts_excluded_rows_by_reason(manifest_dir) -> None:
    (manifest_dir / "img" / "03.png").unlink()
    with pytest.warns(UserWarning):
        m = load_manifest_csv(manifest_dir / "manifest.csv", on_missing="exclude")
    card = build_card(m, INFO)
    assert card.excluded == 1 and card.excluded_reasons == {"missing image file": 1}
    assert "- missing image file: 1" in card.to_markdown()


def test_card_says_when_lesion_ids_are_not_recorded(tmp_path, make_image) -> None:
    make_image(tmp_path / "a.jpg")
    make_image(tmp_path / "b.jpg")
    pd.DataFrame({"image": ["a.jpg", "b.jpg"], "label": ["nv", "mel"]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    card = build_card(load_manifest_csv(tmp_path / "m.csv"), INFO)
    assert card.n_lesions is None and card.n_patients is None
    assert "not recorded (each image is its own group)" in card.to_markdown()
