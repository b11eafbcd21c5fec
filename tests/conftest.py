"""Shared fixtures: the real data by path (skipped with a reason when absent) and seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKINML_SHARED_DATA", REPO.parent / "shared" / "data"))

# Keep thread pools small: CI has 2 cores, and oversubscription only slows tests down.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def shared_dataset(name: str) -> Path:
    """Path to ``../shared/data/<name>``, or skip the test saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path


@pytest.fixture
def shared_data() -> Path:
    """The ``shared/data`` folder; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; tests must pass for any seed, this one is fixed for reproducibility."""
    return np.random.default_rng(12345)


@pytest.fixture
def fits_laptop_screen():
    """``fits_laptop_screen(page)``: open an HTML page 1,000 px wide in headless Chromium and
    assert nothing runs past the right edge and every image loads (skips without Chromium)."""
    from skinml.reporting.browser import find_chromium, measure_layout

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get update && apt-get install -y chromium)")

    def check(page: Path, width: int = 1000):
        layout = measure_layout(page, width=width)
        assert layout.fits, f"{page.name} at {width} px: {layout.overflowing}"
        assert layout.broken_images == [], f"{page.name}: {layout.broken_images}"
        return layout

    return check
