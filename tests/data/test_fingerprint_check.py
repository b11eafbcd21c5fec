"""Checksums, dataset fingerprints and decoding every image."""

from __future__ import annotations

import shutil

import pytest

from skinml.data.check import check_images
from skinml.data.fingerprint import (
    canonical_manifest_csv,
    checksums_for_manifest,
    dataset_fingerprint,
    file_checksums,
    verify_checksum_list,
)
from skinml.data.loaders import load_manifest_csv
from skinml.errors import ConfigError, ManyErrors
from skinml.integrity.checksums import write_checksum_list


def _load(root):
    return load_manifest_csv(root / "manifest.csv")


def test_fingerprint_is_stable_and_moves_with_the_data(manifest_dir, tmp_path) -> None:
    m = _load(manifest_dir)
    fp = dataset_fingerprint(m)
    assert len(fp) == 64 and fp == dataset_fingerprint(_load(manifest_dir))
    # the same data elsewhere has the same fingerprint
    moved = tmp_path / "moved"
    shutil.copytree(manifest_dir, moved)
    assert dataset_fingerprint(_load(moved)) == fp
    # row order does not matter
    shuffled = _load(manifest_dir)
    shuffled.frame = shuffled.frame.iloc[::-1].reset_index(drop=True)
    assert dataset_fingerprint(shuffled) == fp
    # a relabelled row, a split assignment and a changed pixel all change it
    relabelled = _load(manifest_dir)
    relabelled.frame.loc[0, "label"] = "bcc"
    assert dataset_fingerprint(relabelled) != fp
    split = _load(manifest_dir)
    split.frame["split"] = "train"
    assert dataset_fingerprint(split) != fp
    with open(moved / "img" / "00.png", "r+b") as fh:
        fh.seek(-5, 2)
        fh.write(b"\x00\x01\x02\x03\x04")
    assert dataset_fingerprint(_load(moved)) != fp


def test_fingerprint_accepts_precomputed_sha256_but_not_md5(manifest_dir) -> None:
    m = _load(manifest_dir)
    sha = file_checksums(m)
    assert dataset_fingerprint(m, sha) == dataset_fingerprint(m)
    with pytest.raises(ConfigError, match="not SHA-256"):
        dataset_fingerprint(m, file_checksums(m, algorithm="md5"))


def test_canonical_csv_has_fixed_columns_and_lf(manifest_dir) -> None:
    text = canonical_manifest_csv(_load(manifest_dir)).decode()
    assert text.startswith("image,label,patient_id,lesion_id,site,device,split,age,sex\n")
    assert "\r" not in text


def test_tampered_and_missing_files_are_named(manifest_dir) -> None:
    m = _load(manifest_dir)
    write_checksum_list(file_checksums(m), manifest_dir / "SHA256SUMS")
    (manifest_dir / "img" / "03.png").write_bytes(b"tampered")
    (manifest_dir / "img" / "06.png").unlink()
    report = verify_checksum_list(manifest_dir / "SHA256SUMS")
    assert report.changed == ["img/03.png"] and report.missing == ["img/06.png"]
    assert "changed: img/03.png" in report.summary()
    found, uncovered = checksums_for_manifest(m, manifest_dir / "SHA256SUMS")
    assert len(found) == 8 and uncovered == []


def test_check_images_lists_every_bad_file_at_once(manifest_dir) -> None:
    m = _load(manifest_dir)
    (manifest_dir / "img" / "01.png").write_bytes(b"")
    (manifest_dir / "img" / "04.png").write_text("this is not an image")
    data = (manifest_dir / "img" / "05.png").read_bytes()
    (manifest_dir / "img" / "05.png").write_bytes(data[: len(data) // 2])
    (manifest_dir / "img" / "07.png").unlink()
    report = check_images(m, progress=False, workers=2)
    assert report.n_checked == 8 and len(report.sizes) == 4
    bad = dict(zip(report.bad["image"], report.bad["reason"], strict=True))
    assert set(bad) == {"img/01.png", "img/04.png", "img/05.png", "img/07.png"}
    assert "0 bytes" in bad["img/01.png"]
    assert "not a recognised image format" in bad["img/04.png"]
    assert "does not exist" in bad["img/07.png"]
    assert report.bad.set_index("image").loc["img/04.png", "row"] == 6
    with pytest.raises(ManyErrors) as info:
        report.raise_if_failed()
    assert len(info.value.errors) == 4 and "img/05.png" in str(info.value)


def test_check_images_all_good(manifest_dir) -> None:
    report = check_images(_load(manifest_dir), progress=False)
    assert report.ok and "all 8 images" in report.summary() and "12–12 × 9–9 px" in report.summary()
