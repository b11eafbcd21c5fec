"""Image-statistic shift: constant statistics raise nothing (SIMULATED images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from skinml.qc.pipeline import QcOptions, analyse_records
from skinml.qc.records import QcColumns, validate_records
from skinml.qc.shift import standardized_differences


def test_constant_statistic_is_not_a_shift():
    """Every image 600x450: megapixels 0.27 everywhere. Means of identical floats differ in
    the last bits; that rounding noise must not become a Cohen's d."""
    n = [37, 53, 11]
    values = pd.DataFrame(
        {
            "hospital": np.repeat(["A", "B", "C"], n),
            "megapixels": np.full(sum(n), 600 * 450 / 1e6),
            "brightness": np.full(sum(n), 0.1 * 3),
        }
    )
    d = standardized_differences(values, "hospital", ["megapixels", "brightness"])
    assert len(d) == 6
    assert (d["cohens_d"] == 0).all() and np.isfinite(d[["d_ci_low", "d_ci_high"]]).all().all()
    assert (d["sd"] == 0).all() and d["note"].str.contains("the same in every image").all()


def test_no_variation_within_groups_has_no_d_and_no_flag():
    from skinml.qc.flags import shift_flags

    values = pd.DataFrame({"device": ["D1"] * 5 + ["D2"] * 5, "megapixels": [12.0] * 5 + [0.3] * 5})
    d = standardized_differences(values, "device", ["megapixels"])
    assert d["cohens_d"].isna().all() and d["note"].str.contains("undefined").all()
    assert shift_flags(d, unit_type="device").empty


def test_same_size_images_raise_no_shift_alarm_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for h in ("A", "B", "C"):
        for i in range(12):
            name = f"{h}{i}.png"
            grey = np.full((45, 60, 3), 128, dtype=np.uint8)
            Image.fromarray(grey).save(tmp_path / name)
            rows.append({"hospital": h, "image": name, "diagnosis": rng.choice(["nv", "mel"])})
    rec = validate_records(pd.DataFrame(rows), QcColumns(covariates=()))
    res = analyse_records(
        rec, QcOptions(image_root=tmp_path, n_bootstrap=10, progress=False, per_diagnosis=False)
    )
    shift = res.tables["image_shift_hospital"]
    assert np.isfinite(shift["cohens_d"]).all()
    assert not (res.flags["analysis"] == "image shift").any()
