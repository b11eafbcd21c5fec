"""Generated image datasets and a shrunk real Hydra config for training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


def make_lesion_dataset(
    root: Path,
    n_per_class: int = 30,
    size: tuple[int, int] = (48, 40),
    seed: int = 0,
    fmt: str = "png",
) -> Path:
    """Write a two-class dermoscopy-like dataset: dark irregular blobs ('mel') vs light round
    blobs ('nv') on skin-coloured noise, with patients, sites and ages. Returns the manifest.
    ``fmt="jpg"`` with a large ``size`` gives photos that take the reduced-scale decode."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rows = []
    for label, tone, rough in (("mel", 50, 0.35), ("nv", 150, 0.05)):
        for i in range(n_per_class):
            skin = np.array([225, 180, 160]) + rng.normal(0, 8, (h, w, 3))
            r = min(w, h) * rng.uniform(0.22, 0.32)
            cx, cy = w / 2 + rng.normal(0, 3), h / 2 + rng.normal(0, 3)
            radius = r * (1 + rough * rng.standard_normal((h, w)))
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
            skin[inside] = np.array([tone, tone * 0.7, tone * 0.6]) + rng.normal(
                0, 10, (inside.sum(), 3)
            )
            name = f"images/{label}_{i:03d}.{fmt}"
            Image.fromarray(np.clip(skin, 0, 255).astype(np.uint8)).save(root / name)
            rows.append(
                {
                    "image": name,
                    "label": label,
                    "patient_id": f"P{i // 2:03d}{label}",
                    "lesion_id": f"L{i:03d}{label}",
                    "site": f"hospital_{i % 3}",
                    "device": "dermatoscope",
                    "sex": "female" if i % 2 else "male",
                    "age": int(rng.integers(20, 80)),
                }
            )
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def lesion_manifest(tmp_path) -> Path:
    return make_lesion_dataset(tmp_path / "data")


def train_overrides(manifest: Path, tmp_path: Path, *extra: str) -> list[str]:
    """Overrides that shrink the real config to a seconds-long CPU run in tmp_path.

    ``extra`` overrides replace base ones with the same key (Hydra refuses duplicates).
    """
    base = [
        "data=manifest",
        f"data.source.path={manifest}",
        "data.classes=[mel,nv]",
        "data.malignant=[mel]",
        "data.image_size=32",
        "data.split.val_fraction=0.25",
        "data.split.test_fraction=0.25",
        "model=small_cnn",
        "trainer.max_epochs=3",
        "trainer.batch_size=16",
        "trainer.progress=false",
        "trainer.threads=1",
        "evaluation.n_bootstrap=50",
        "evaluation.gradcam_images=2",
        "evaluation.subgroup_min_n=5",
        f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        f"output_root={tmp_path}/outputs",
    ]
    merged = {o.split("=", 1)[0]: o for o in base}
    merged.update({o.split("=", 1)[0]: o for o in extra})
    return list(merged.values())


def compose_train_config(overrides: list[str]):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=False)


@pytest.fixture
def train_config():
    """``train_config(manifest, tmp_path, *extra_overrides)`` -> the composed, shrunk config."""

    def make(manifest: Path, tmp: Path, *extra: str):
        return compose_train_config(train_overrides(manifest, tmp, *extra))

    return make


@pytest.fixture(scope="session")
def lesion_dataset_factory():
    return make_lesion_dataset


@pytest.fixture(scope="session")
def shrunk_overrides():
    """``shrunk_overrides(manifest, tmp, *extra)`` -> the override list (for subprocess runs)."""
    return train_overrides
