"""Fixtures for skinml-qc tests: small SIMULATED regions and records files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skinml.qc.simulate import simulate_region


@pytest.fixture(scope="module")
def sim_region():
    """A SIMULATED region of 12 hospitals, SIM-H03 (583 cases) under-calling melanoma heavily."""
    return simulate_region(
        12, seed=3, volume_median=400, biases={"SIM-H03": ("under-call melanoma", 0.8)}
    )


@pytest.fixture
def records_csv(tmp_path: Path, sim_region) -> Path:
    """The simulated records written as a CSV the way a hospital would export them."""
    df = sim_region.records.drop(columns=["true_diagnosis", "simulated"]).copy()
    df["date"] = df["date"].dt.strftime("%Y-%m-%d")
    path = tmp_path / "simulated_records.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_records() -> pd.DataFrame:
    """Ten hand-written rows with known problems in rows 3, 5, 7 and 9."""
    return pd.DataFrame(
        {
            "hospital": ["A", "A", "", "B", "B", "C", "B", "A", "Z", "B"],
            "case": [f"c{i}" for i in range(1, 11)],
            "diagnosis": ["mel", "nv", "nv", "nv", "", "bcc", "nv", "mel", "nv", "xyz"],
            "date": [
                "2025-01-03",
                "2025-01-04",
                "2025-02-01",
                "not a date",
                "2025-02-03",
                "2025-03-01",
                "2025-03-02",
                "2025-03-03",
                "2025-03-04",
                "2025-03-05",
            ],
        }
    )
