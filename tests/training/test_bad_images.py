"""Issue 15: one training run lists every unreadable image of every split, each with its row."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("torch")

from skinml.errors import ManyErrors


def test_bad_images_of_all_splits_are_listed_at_once_with_rows(
    lesion_manifest, tmp_path, train_config
):
    from skinml.training.pipeline import run

    images = sorted((lesion_manifest.parent / "images").glob("*.png"))
    broken = {p.resolve() for p in images[::4]}  # 15 of 60: every split gets some
    for path in broken:
        path.write_bytes(b"not a png")
    cfg = train_config(lesion_manifest, tmp_path)
    (tmp_path / "run").mkdir()
    with pytest.raises(ManyErrors) as info:
        run(cfg, tmp_path / "run")
    text = str(info.value)
    assert f"({len(broken)} problems)" in text and text.count("Fix:") == 1
    with open(tmp_path / "run" / "split_manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    splits = set()
    for number, row in enumerate(rows, start=2):
        if (tmp_path / "run" / row["image"]).resolve() in broken:
            assert f"row {number} of " in text and row["image"].split("/")[-1] in text
            splits.add(row["split"])
    assert splits == {"train", "val", "test"}
