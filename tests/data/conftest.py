"""Fixtures for the data layer: tiny generated images and datasets in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SKINML_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(name: str) -> Path:
    """``shared/data/<name>``, or skip saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path


def write_image(path: Path, *, size: tuple[int, int] = (12, 9), value: int = 128) -> Path:
    """A tiny solid-colour image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    arr[0, 0] = (value + 50) % 256
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def make_image():
    """The ``write_image`` helper, as a fixture (test modules cannot import conftest)."""
    return write_image


@pytest.fixture
def shared_dir():
    """The ``shared`` helper: ``shared_dir("isic2017_256")`` or skip with the reason."""
    return shared


@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    """root/nevus/*.jpg (3), root/melanoma/*.png (2), plus a README.txt and a stray root image."""
    root = tmp_path / "tree"
    for i in range(3):
        write_image(root / "nevus" / f"n{i}.jpg", value=100 + i)
    for i in range(2):
        write_image(root / "melanoma" / "sub" / f"m{i}.png", value=200 + i)
    (root / "README.txt").write_text("not an image")
    write_image(root / "stray.jpg")
    return root


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    """``data/manifest.csv`` with 8 images over 4 lesions, 3 patients, 2 sites."""
    root = tmp_path / "data"
    rows = []
    for i in range(8):
        rel = f"img/{i:02d}.png"
        write_image(root / rel, value=10 * i)
        rows.append(
            {
                "image": rel,
                "label": "mel" if i % 2 else "nv",
                "patient_id": f"P{i // 3}",
                "lesion_id": f"L{i // 2}",
                "site": "A" if i < 4 else "B",
                "device": "dermlite",
                "age": 30 + i,
                "sex": "female" if i % 3 else "male",
            }
        )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


@pytest.fixture
def grouped_frame(rng: np.random.Generator) -> pd.DataFrame:
    """600 images of 300 lesions of 150 patients, 3 classes (60/30/10 %)."""
    n_lesions = 300
    lesion_label = rng.choice(["nv", "mel", "bcc"], size=n_lesions, p=[0.6, 0.3, 0.1])
    rows = []
    for lesion in range(n_lesions):
        for k in range(int(rng.integers(1, 4))):
            rows.append(
                {
                    "image": f"L{lesion:03d}_{k}.jpg",
                    "label": lesion_label[lesion],
                    "lesion_id": f"L{lesion:03d}",
                    "patient_id": f"P{lesion // 2:03d}",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def ham():
    """The real HAM10000 manifest (shared 200x150 copy), loaded once per session."""
    from skinml.data.loaders import load_ham10000

    return load_ham10000(shared("ham10000_images_200x150"))


@pytest.fixture(scope="session")
def ham_lesion_split(ham):
    """HAM10000 with a lesion-grouped 70/10/20 split (seed 0), computed once."""
    from skinml.data.splits import assign_splits

    return assign_splits(ham, strategy="lesion", val_fraction=0.1, test_fraction=0.2, seed=0)
