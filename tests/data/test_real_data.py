"""Loaders, splits and integrity checks on the real data in ../shared/data (skipped if absent)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from skinml.data.check import check_images
from skinml.data.fingerprint import verify_checksum_list
from skinml.data.loaders import load_isic2017, load_isic_uda1_archive
from skinml.data.manifest import Manifest
from skinml.data.registry import get_card
from skinml.data.splits import assign_splits, leakage_report
from skinml.integrity.checksums import read_checksum_list, write_checksum_list

pytestmark = pytest.mark.real_data


def test_ham10000_manifest(ham: Manifest) -> None:
    assert len(ham) == 10_015
    assert ham.classes == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert ham.frame["site"].value_counts().to_dict() == {
        "vidir_molemax": 3954,
        "vidir_modern": 3363,
        "rosendahl": 2259,
        "vienna_dias": 439,
    }
    assert ham.frame["lesion_id"].nunique() == 7470
    assert {"age", "sex", "localization", "dx_type"} <= set(ham.frame.columns)
    assert int(ham.frame["sex"].isna().sum()) == 57


def test_dermamnist_predefined_split_counts_and_leakage(ham: Manifest) -> None:
    m = assign_splits(ham, strategy="predefined")
    assert m.frame["split"].value_counts().to_dict() == {"train": 7007, "test": 2005, "val": 1003}
    counts = pd.crosstab(m.frame["split"], m.frame["label"])
    assert counts.loc["test"].tolist() == [66, 103, 220, 23, 223, 1341, 29]
    report = leakage_report(m, by="lesion_id")
    assert report.n_leaking == 1006
    assert sum(report.pairs.values()) == 1006


def test_grouped_split_has_no_leaking_lesion(ham_lesion_split: Manifest) -> None:
    assert leakage_report(ham_lesion_split, by="lesion_id").n_leaking == 0
    sizes = ham_lesion_split.frame["split"].value_counts(normalize=True)
    assert sizes["test"] == pytest.approx(0.2, abs=0.01)
    assert sizes["val"] == pytest.approx(0.1, abs=0.01)


def test_grouped_split_keeps_class_proportions(ham_lesion_split: Manifest) -> None:
    f = ham_lesion_split.frame
    overall = f["label"].value_counts(normalize=True)
    for split in ("train", "val", "test"):
        part = f.loc[f["split"] == split, "label"].value_counts(normalize=True)
        for label, share in overall.items():
            # within 1.5 percentage points, or 15 % relative for the rare classes
            assert abs(part[label] - share) <= max(0.015, 0.15 * share), (split, label)


def test_ham10000_card_reports_dermamnist_leakage(ham: Manifest) -> None:
    card = get_card("ham10000", manifest=ham)
    assert card.leakage["lesion_id"] == 1006
    assert card.counts["val"]["mel"] == 111
    assert "**1,006 lesions have images in more than one split**" in card.to_markdown()


def test_isic2017_official_splits(shared_dir) -> None:
    m = load_isic2017(shared_dir("isic2017_256"))
    assert m.frame["split"].value_counts().to_dict() == {"train": 2000, "test": 600, "val": 150}
    counts = pd.crosstab(m.frame["split"], m.frame["label"])
    assert counts.loc["train"].to_dict() == {
        "melanoma": 374,
        "nevus": 1372,
        "seborrheic_keratosis": 254,
    }
    assert counts.loc["test", "melanoma"] == 117
    train = m.frame[m.frame["split"] == "train"]
    assert train["sex"].value_counts().to_dict() == {"male": 900, "female": 871}
    assert m.frame.loc[m.frame["split"] == "test", "age"].isna().all()


def test_uda1_archive_loads_only_included_images(shared_dir) -> None:
    m = load_isic_uda1_archive(shared_dir("isic_archive_uda1"))
    assert len(m) == 113
    assert len(m.excluded) == 444
    assert m.excluded["reason"].str.startswith("not included").all()


def test_md5sums_verify_a_sample_and_detect_a_tampered_copy(shared_dir, tmp_path) -> None:
    src = shared_dir("ham10000_images_200x150")
    report = verify_checksum_list(src / "MD5SUMS", sample=200, seed=1)
    assert report.ok and report.checked == 200
    # a copy of 5 files with one byte changed in one and another deleted
    listed = read_checksum_list(src / "MD5SUMS")
    names = sorted(k for k in listed if k.startswith("images/"))[:5]
    for name in names:
        (tmp_path / "images").mkdir(exist_ok=True)
        shutil.copyfile(src / name, tmp_path / name)
    write_checksum_list({k: listed[k] for k in names}, tmp_path / "MD5SUMS")
    data = bytearray((tmp_path / names[1]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / names[1]).write_bytes(bytes(data))
    (tmp_path / names[3]).unlink()
    report = verify_checksum_list(tmp_path / "MD5SUMS")
    assert report.changed == [names[1]] and report.missing == [names[3]]
    assert f"changed: {names[1]}" in report.summary()


@pytest.mark.slow
def test_every_isic2017_image_decodes(shared_dir) -> None:
    report = check_images(load_isic2017(shared_dir("isic2017_256")), progress=False, workers=2)
    assert report.ok, report.summary()
    assert report.n_checked == 2750 and set(report.sizes["width"]) == {256}
