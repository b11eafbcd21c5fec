"""Grouped, stratified splits and the leakage report, on generated groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinml.data.manifest import Manifest
from skinml.data.splits import assign_splits, leakage_report
from skinml.errors import ConfigError, DataError


def _manifest(frame: pd.DataFrame) -> Manifest:
    return Manifest(frame, "/nonexistent", "generated")


def test_lesion_split_has_no_leakage_and_keeps_class_proportions(grouped_frame) -> None:
    m = assign_splits(_manifest(grouped_frame), "lesion", 0.1, 0.2, seed=3)
    assert leakage_report(m, by="lesion_id").n_leaking == 0
    share = m.frame["split"].value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.05)
    assert share["val"] == pytest.approx(0.1, abs=0.05)
    overall = m.frame["label"].value_counts(normalize=True)
    for split in ("train", "val", "test"):
        part = m.frame.loc[m.frame["split"] == split, "label"].value_counts(normalize=True)
        for label in overall.index:
            assert part.get(label, 0.0) == pytest.approx(overall[label], abs=0.08), (split, label)


def test_patient_split_keeps_patients_and_lesions_together(grouped_frame) -> None:
    frame = grouped_frame.copy()
    # a lesion recorded under a second patient id links the two patients
    frame.loc[frame["lesion_id"] == "L001", "patient_id"] = ["P777"] * int(
        (frame["lesion_id"] == "L001").sum()
    )
    frame.loc[frame.index[0], "patient_id"] = "P777"
    m = assign_splits(_manifest(frame), "patient", seed=1)
    assert leakage_report(m, by="patient_id").n_leaking == 0
    assert leakage_report(m, by="lesion_id").n_leaking == 0


def test_same_seed_same_split_other_seed_other_split(grouped_frame) -> None:
    a = assign_splits(_manifest(grouped_frame), seed=0).frame["split"]
    b = assign_splits(_manifest(grouped_frame), seed=0).frame["split"]
    c = assign_splits(_manifest(grouped_frame), seed=1).frame["split"]
    assert a.equals(b)
    assert not a.equals(c)


def test_split_keeps_excluded_rows_and_root(grouped_frame) -> None:
    excluded = pd.DataFrame({"row": [9], "reason": ["missing image file: x"]})
    m = Manifest(grouped_frame, "/data", "g", excluded=excluded)
    out = assign_splits(m)
    assert out.excluded.equals(excluded) and str(out.root) == "/data" and out.name == "g"
    assert m.frame["split"].isna().all()  # the input is not modified


def test_leakage_report_counts_groups_spanning_splits() -> None:
    frame = pd.DataFrame(
        {
            "image": [f"{i}.jpg" for i in range(7)],
            "label": ["a"] * 7,
            "lesion_id": ["L1", "L1", "L2", "L2", "L3", "L3", "L3"],
            "split": ["train", "test", "val", "val", "train", "val", "test"],
        }
    )
    r = leakage_report(_manifest(frame))
    assert (r.n_groups, r.n_leaking, r.n_images_leaking) == (3, 2, 5)
    assert r.pairs == {"train+test": 1, "train+val+test": 1}
    assert set(r.groups["lesion_id"]) == {"L1", "L3"}
    assert "2 of 3 lesion_id values span more than one split" in r.summary()


def test_predefined_keeps_split_and_refuses_gaps(grouped_frame) -> None:
    frame = grouped_frame.copy()
    frame["split"] = np.where(np.arange(len(frame)) % 5 == 0, "test", "train")
    out = assign_splits(_manifest(frame), "predefined")
    assert out.frame["split"].tolist() == frame["split"].tolist()
    frame.loc[3, "split"] = None
    with pytest.raises(DataError, match="1 rows have no split") as info:
        assign_splits(_manifest(frame), "predefined")
    assert grouped_frame.loc[3, "image"] in str(info.value)
    with pytest.raises(DataError, match="no row has one"):
        assign_splits(_manifest(grouped_frame), "predefined")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "image"}, "unknown split strategy 'image'"),
        ({"val_fraction": 1.5}, "outside"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "leaves no training data"),
    ],
)
def test_bad_split_settings_are_refused(grouped_frame, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        assign_splits(_manifest(grouped_frame), **kwargs)


def test_too_few_groups_to_split() -> None:
    frame = pd.DataFrame({"image": ["a", "b"], "label": ["x", "y"], "lesion_id": ["L", "L"]})
    with pytest.raises(DataError, match=r"cannot split dataset .*: 1 groups"):
        assign_splits(_manifest(frame))
