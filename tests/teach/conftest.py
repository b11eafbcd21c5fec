"""Fixtures for the teach tests: a tiny generated manifest and the real HAM10000 test split."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from skinml.data.manifest import Manifest
from skinml.teach.build import build_teaching_set
from skinml.teach.simulate import simulate_predictions

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SKINML_SHARED_DATA", REPO.parent / "shared" / "data"))
HAM_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def shared_dataset(name: str) -> Path:
    """Path to ``shared/data/<name>``, or skip saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path


def _jpeg_with_exif(path: Path, colour: tuple[int, int, int]) -> None:
    img = Image.new("RGB", (40, 30), colour)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0)}  # GPS IFD
    img.save(path, format="JPEG", exif=exif.tobytes())


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Manifest:
    """7 HAM10000 classes x 5 lesions (one lesion with two images), JPEGs carrying EXIF + GPS."""
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    rows = []
    for k, label in enumerate(HAM_CLASSES):
        for j in range(5):
            name = f"img/{label}_{j}.jpg"
            _jpeg_with_exif(root / name, (30 * k, 10 * j, 200 - 20 * k))
            rows.append({"image": name, "label": label, "lesion_id": f"L_{label}_{j}"})
    _jpeg_with_exif(root / "img/nv_0_b.jpg", (1, 2, 3))
    rows.append({"image": "img/nv_0_b.jpg", "label": "nv", "lesion_id": "L_nv_0"})
    frame = pd.DataFrame(rows)
    frame.to_csv(root / "manifest.csv", index=False)
    return Manifest(frame, root, "tiny")


def ham_test_manifest() -> Manifest:
    """The real HAM10000 DermaMNIST test split as a skinml manifest (image=file, label=dx)."""
    root = shared_dataset("ham10000_images_200x150")
    d = pd.read_csv(root / "manifest.csv")
    d = d[d["dermamnist_split"] == "test"]
    frame = pd.DataFrame(
        {
            "image": d["file"],
            "label": d["dx"],
            "lesion_id": d["lesion_id"],
            "site": d["dataset"],
            "split": "test",
        }
    ).reset_index(drop=True)
    return Manifest(frame, root, "ham10000_test")


@pytest.fixture(scope="session")
def ham_set(tmp_path_factory: pytest.TempPathFactory):
    """A 40-case teaching set from the real HAM10000 test split, with a SIMULATED AI (75%)."""
    manifest = ham_test_manifest()
    work = tmp_path_factory.mktemp("ham_set")
    images = [str(manifest.root / p) for p in manifest.frame["image"]]
    preds = simulate_predictions(
        images, manifest.frame["label"], HAM_CLASSES, accuracy=0.75, seed=3
    )
    pred_csv = work / "predictions_simulated.csv"
    preds.to_csv(pred_csv, index=False)
    ts = build_teaching_set(
        manifest, work / "set", 40, seed=0, ai_predictions=pred_csv, progress=False
    )
    return ts, pred_csv, manifest


@pytest.fixture
def small_reference(tmp_path: Path) -> Path:
    """A 10-case key: 3 mel, 1 bcc, 4 nv, 2 bkl (written by hand, no images)."""
    diag = ["mel", "nv", "bcc", "nv", "mel", "bkl", "nv", "mel", "bkl", "nv"]
    frame = pd.DataFrame(
        {
            "case": [f"case_{i:03d}" for i in range(1, 11)],
            "diagnosis": diag,
            "malignant": [d in ("mel", "bcc", "akiec") for d in diag],
            "source_image": [f"img/{i}.jpg" for i in range(10)],
        }
    )
    path = tmp_path / "set" / "reference.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    return path


def _predict_fixtures():
    """tests/predict/conftest.py as a module: its tiny hand-built CAM model (no torch)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "predict_fixtures", REPO / "tests" / "predict" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ai_quiz_set(tmp_path_factory: pytest.TempPathFactory):
    """9 cases (nv, mel, bkl) built with the tiny ONNX model: plain and AI-support quizzes.

    Source images are named SRC_<label>_<n>.jpg and lesions LES_<label>_<n>, so a test can
    search the quiz for every one of them.
    """
    fx = _predict_fixtures()
    work = tmp_path_factory.mktemp("ai_quiz")
    root = work / "data"
    (root / "img").mkdir(parents=True)
    rows = []
    for k, label in enumerate(fx.CLASSES):
        for j in range(6):
            name = f"img/SRC_{label}_{j}.jpg"
            fx.lesion_image(10 * k + j).save(root / name)
            rows.append({"image": name, "label": label, "lesion_id": f"LES_{label}_{j}"})
    manifest = Manifest(pd.DataFrame(rows), root, "tiny3")
    model = fx.write_tiny_model(work / "tiny.onnx")
    ts = build_teaching_set(manifest, work / "set", 9, model=model, seed=0, progress=False)
    return ts, model, manifest
