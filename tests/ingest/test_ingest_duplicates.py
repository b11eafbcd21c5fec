"""Exact and near-duplicates across hospitals; the groups a split must respect."""

from __future__ import annotations

import hashlib

import pandas as pd

from skinml.ingest import (
    assign_duplicate_groups,
    assign_split_groups,
    merge_duplicate_lesions,
    near_pairs,
)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cross_hospital_copies_share_a_duplicate_group(sim, ingested) -> None:
    d, result = ingested
    m = result.manifest.set_index("source_sha256")
    original = m.loc[_sha(d.north / sim.NORTH_PATIENT_FILE)]
    near = m.loc[_sha(d.south / "photos/near_copy.jpg")]
    assert isinstance(original, pd.DataFrame) and len(original) == 2  # north + south exact copy
    assert set(original["site"]) == {"simulated_north", "simulated_south"}
    assert set(original["duplicate_kind"]) == {"exact"}
    assert near["duplicate_kind"] == "near"
    group = set(original["duplicate_group"]) | {near["duplicate_group"]}
    assert len(group) == 1
    assert len(set(original["split_group"]) | {near["split_group"]}) == 1
    # nothing else is a duplicate, and every other image has its own group
    others = result.manifest[result.manifest["duplicate_kind"] == "none"]
    assert len(others) == len(result.manifest) - 3
    assert others["duplicate_group"].is_unique


def test_split_group_joins_patient_lesion_and_duplicates() -> None:
    frame = pd.DataFrame(
        {
            "image": [f"images/s/{c}.jpg" for c in "abcde"],
            "patient_id": ["P1", "P1", "P2", "P3", "P4"],
            "lesion_id": ["L1", "L2", "L3", "L4", "L4"],
            "duplicate_group": ["dup-a", "dup-b", "dup-b", "dup-d", "dup-e"],
        }
    )
    groups = assign_split_groups(frame)
    # a-b share a patient, b-c are duplicates, d-e share a lesion
    assert groups.tolist() == ["grp-a", "grp-a", "grp-a", "grp-d", "grp-d"]


def test_near_pairs_uses_hamming_distance() -> None:
    base = 0x0123456789ABCDEF
    hashes = [f"{base:016x}", f"{base ^ 0b111:016x}", f"{base ^ (2**40 - 1):016x}"]
    assert near_pairs(hashes, threshold=3) == [(0, 1, 3)]
    assert near_pairs(hashes, threshold=2) == []
    assert (0, 2, 40) in near_pairs(hashes, threshold=64)


def test_exact_duplicates_by_output_hash_too() -> None:
    frame = pd.DataFrame(
        {
            "image": ["images/a/1.jpg", "images/b/2.jpg", "images/b/3.jpg"],
            "sha256": ["s1", "s1", "s3"],  # same pixels from differently encoded sources
            "source_sha256": ["x1", "x2", "x3"],
            "phash": ["0000000000000000", "0000000000000000", "ffffffffffffffff"],
        }
    )
    out = assign_duplicate_groups(frame, threshold=4)
    assert out["duplicate_kind"].tolist() == ["exact", "exact", "none"]
    assert out["duplicate_group"].tolist() == ["dup-1", "dup-1", "dup-3"]


def test_duplicates_share_a_lesion_id_and_keep_the_delivered_one(ingested) -> None:
    _, result = ingested
    m = result.manifest
    dup = m[m["duplicate_kind"] != "none"]
    assert dup["lesion_id"].nunique() == 1
    assert dup["lesion_id_delivered"].nunique() == 3  # each copy came without a shared lesion
    rest = m[m["duplicate_kind"] == "none"]
    assert (rest["lesion_id"] == rest["lesion_id_delivered"]).all()


def test_merge_duplicate_lesions_follows_lesions_and_groups() -> None:
    frame = pd.DataFrame(
        {
            "image": [f"images/s/{c}.jpg" for c in "abcd"],
            "lesion_id": ["L-b", "L-b", "L-a", "L-z"],
            "duplicate_group": ["dup-a", "dup-b", "dup-b", "dup-d"],
        }
    )
    # a shares lesion L-b with b; b and c are copies; d stands alone
    assert merge_duplicate_lesions(frame).tolist() == ["L-a", "L-a", "L-a", "L-z"]


def test_the_splitter_keeps_copies_together(sim, tmp_path) -> None:
    """Many copies across two hospitals: skinml.data.splits' lesion strategy never splits them."""
    from skinml.data.manifest import read_manifest
    from skinml.data.splits import assign_splits
    from skinml.ingest import run_ingest

    roots = [tmp_path / "simulated_a", tmp_path / "simulated_b"]
    for h, root in enumerate(roots):
        for i in range(30):
            label = "mel" if i % 2 else "nv"
            (root / label).mkdir(parents=True, exist_ok=True)
            img = sim.textured(100 + i)  # the same 30 pictures at both hospitals...
            if h:  # ...re-encoded smaller at the second one (near-duplicates)
                img = img.resize((64, 48))
            img.save(root / label / f"{i}.png")
    result = run_ingest(roots, tmp_path / "ds", sim.KEY, progress=False)
    assert (result.manifest["duplicate_kind"] == "near").sum() == 60
    split = assign_splits(read_manifest(result.manifest_path), "lesion", seed=3).frame
    assert split.groupby("duplicate_group")["split"].nunique().max() == 1
    assert set(split["split"]) == {"train", "val", "test"}
