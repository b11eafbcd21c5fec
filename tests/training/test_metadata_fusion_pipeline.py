"""skinml-train with data.metadata_columns: the real config, shrunk, trains, exports, predicts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from skinml.errors import ConfigError, ManyErrors

COLUMNS = "data.metadata_columns=[age,sex,localization]"
SITES = ("back", "face", "lower extremity", "trunk")


def add_metadata(manifest: Path, *, seed: int = 0) -> Path:
    """Give the generated lesions a localization column and some unknown cells."""
    frame = pd.read_csv(manifest)
    rng = np.random.default_rng(seed)
    frame["localization"] = [SITES[i % len(SITES)] for i in range(len(frame))]
    frame["age"] = frame["age"].astype(object)
    frame.loc[frame.index % 7 == 3, "age"] = ""
    frame.loc[frame.index % 9 == 4, "sex"] = "unknown"
    frame.loc[frame.index % 11 == 5, "localization"] = None
    frame.loc[rng.random(len(frame)) < 0.1, "sex"] = "Female"  # case variants are fine
    frame.to_csv(manifest, index=False)
    return manifest


def _run(cfg, run_dir: Path):
    from skinml.training.pipeline import run

    run_dir.mkdir(parents=True, exist_ok=True)
    return run(cfg, run_dir)


@pytest.fixture(scope="module")
def fused(tmp_path_factory, lesion_dataset_factory, shrunk_overrides):
    from hydra import compose, initialize_config_module

    tmp = tmp_path_factory.mktemp("fusion")
    manifest = add_metadata(lesion_dataset_factory(tmp / "data", n_per_class=16))
    overrides = shrunk_overrides(manifest, tmp, "trainer.max_epochs=1", COLUMNS)
    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return _run(cfg, tmp / "run"), tmp


def test_bundle_and_model_file_record_the_metadata_input(fused):
    from skinml.modelfile import read_metadata
    from skinml.models.fusion import MetadataFusionClassifier
    from skinml.training.bundle import ModelBundle

    outcome, _ = fused
    bundle = ModelBundle.load(outcome.run_dir)
    doc = bundle.metadata.extra["metadata_input"]
    assert doc["columns"] == ["age", "sex", "localization"]
    assert doc["feature_names"][:2] == ["age", "age_missing"]
    assert "sex=female" in doc["feature_names"] and "localization=unknown" in doc["feature_names"]
    assert bundle.model_kwargs["metadata_features"] == len(doc["feature_names"])
    assert isinstance(bundle.build_model(), MetadataFusionClassifier)

    meta = read_metadata(outcome.onnx_path)
    assert meta.extra["metadata_input"] == doc
    assert set(meta.inputs) == {"image", "metadata"}
    assert "localization=unknown" in meta.inputs["metadata"]
    assert meta.extra["tensors"]["metadata"] == "metadata"
    ver = meta.extra["verification"]
    n_val = int((pd.read_csv(outcome.run_dir / "split_manifest.csv")["split"] == "val").sum())
    assert ver["passed"] and ver["n_images"] == n_val
    assert "## Patient metadata input" in outcome.onnx_path.with_suffix(".card.md").read_text()
    assert (outcome.run_dir / "plots" / "gradcam_test.png").is_file()


def test_mlflow_run_records_the_encoding_and_the_unknown_counts(fused):
    import json

    import mlflow

    outcome, tmp = fused
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    run = client.get_run(outcome.mlflow_run_id)
    assert json.loads(run.data.params["data.metadata_columns"]) == ["age", "sex", "localization"]
    path = client.download_artifacts(run.info.run_id, "data/metadata_input.json", str(tmp))
    doc = json.loads(Path(path).read_text())
    assert doc["columns"] == ["age", "sex", "localization"]
    assert doc["cells_encoded_as_unknown"]["age"] >= 1  # add_metadata blanked every 7th age


def test_onnx_has_two_inputs_and_matches_pytorch(fused):
    import onnxruntime as ort
    import torch

    from skinml.export.graph import exportable
    from skinml.imaging.preprocess import preprocess
    from skinml.imaging.read import read_image
    from skinml.modelfile import read_metadata
    from skinml.modelfile.metadata_input import MetadataEncoding
    from skinml.training.bundle import ModelBundle

    outcome, _ = fused
    sess = ort.InferenceSession(str(outcome.onnx_path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in sess.get_inputs()}
    meta = read_metadata(outcome.onnx_path, session=sess)
    enc = MetadataEncoding.from_dict(meta.extra["metadata_input"])
    assert list(inputs) == ["image", "metadata"]
    assert isinstance(inputs["image"][0], str) and inputs["image"][0] == inputs["metadata"][0]
    assert inputs["metadata"][1] == enc.n_features

    split = pd.read_csv(outcome.run_dir / "split_manifest.csv", dtype=str, keep_default_na=False)
    rows = split[split["split"] == "test"].head(5)
    x = np.stack(
        [preprocess(read_image(outcome.run_dir / p), meta.preprocessing) for p in rows["image"]]
    )
    m = enc.encode_rows(rows[list(enc.column_names)].to_dict("records")).features
    bundle = ModelBundle.load(outcome.run_dir)
    wrapper = exportable(bundle.build_model(), meta.calibration.temperature).eval()
    with torch.no_grad():
        t_probs = wrapper(torch.from_numpy(x), torch.from_numpy(m))[1].numpy()
    logits, probs, cam = sess.run(["logits", "probabilities", "cam"], {"image": x, "metadata": m})
    assert np.abs(probs - t_probs).max() <= 1e-4
    np.testing.assert_allclose(cam.mean(axis=(2, 3)), logits, atol=1e-4)
    # the metadata input matters: other metadata, other probabilities
    other = sess.run(["probabilities"], {"image": x, "metadata": np.roll(m, 1, axis=1)})[0]
    assert np.abs(other - probs).max() > 1e-4


def test_skinml_predict_on_a_csv_gives_one_row_per_input(fused, tmp_path):
    from skinml.predict.cli import main

    outcome, _ = fused
    split = pd.read_csv(outcome.run_dir / "split_manifest.csv", dtype=str, keep_default_na=False)
    test = split[split["split"] == "test"]
    image = str((outcome.run_dir / test["image"].iloc[0]).resolve())
    cases = pd.DataFrame(
        [
            {"image": image, "age": "25", "sex": "male", "localization": "face"},
            {"image": image, "age": "85", "sex": "female", "localization": "trunk"},
            {"image": image, "age": "", "sex": "", "localization": "scalp"},
            {"image": image, "age": "two", "sex": "male", "localization": "face"},
            {"image": "missing.jpg", "age": "40", "sex": "male", "localization": "face"},
        ]
    )
    cases_csv = tmp_path / "cases.csv"
    cases.to_csv(cases_csv, index=False)
    out = tmp_path / "pred.csv"
    assert main([str(outcome.onnx_path), str(cases_csv), "-o", str(out), "--no-progress"]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error", "error"]
    p = np.array([[float(r["p_mel"]), float(r["p_nv"])] for r in rows[:3]])
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert np.abs(p[0] - p[1]).max() > 1e-4  # same image, different patient
    assert "localization 'scalp' not seen in training" in rows[2]["metadata_notes"]
    assert rows[3]["error"].startswith("CSV row 5, column 'age': 'two' is not a number")


def test_misspelled_metadata_column_lists_the_manifests_columns(
    lesion_manifest, tmp_path, train_config
):
    cfg = train_config(lesion_manifest, tmp_path, "data.metadata_columns=[age,sex,localisation]")
    with pytest.raises(ConfigError) as info:
        _run(cfg, tmp_path / "run")
    msg = str(info.value)
    assert "['localisation']" in msg and "'sex'" in msg and "'age'" in msg
    assert "data.metadata_columns" in msg
    assert not (tmp_path / "run" / "model_bundle.pt").exists()


def test_bad_metadata_cells_stop_training_naming_column_row_and_image(
    lesion_manifest, tmp_path, train_config
):
    frame = pd.read_csv(lesion_manifest)
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "abc"
    frame.loc[5, "age"] = 150
    frame.loc[7, "sex"] = "femal"
    frame.to_csv(lesion_manifest, index=False)
    cfg = train_config(lesion_manifest, tmp_path, "data.metadata_columns=[age,sex]")
    with pytest.raises(ManyErrors) as info:
        _run(cfg, tmp_path / "run")
    msg = str(info.value)
    assert f"row 4 (image {frame.loc[2, 'image']}), column 'age': 'abc' is not a number" in msg
    assert "row 7" in msg and "'150' is out of range" in msg
    errors = info.value.errors
    where = [(e.column, e.row.split()[0]) for e in errors]
    assert where == [("age", "4"), ("age", "7"), ("sex", "9")]  # wherever the split put them


def test_training_masks_metadata_columns_at_the_configured_rate():
    from skinml.data.torch_dataset import ManifestImageDataset
    from skinml.modelfile.metadata import Preprocessing
    from skinml.modelfile.metadata_input import fit_metadata_encoding

    enc = fit_metadata_encoding(["age", "sex"], {"age": [20, 60], "sex": ["male", "female"]})
    feats = enc.encode_rows([{"age": 40, "sex": "male"}] * 400).features
    prep = Preprocessing((8, 8), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = np.zeros((400, 8, 8, 3), np.uint8)
    ds = ManifestImageDataset(
        images,
        np.zeros(400, np.int64),
        prep,
        metadata=feats,
        masking=0.25,
        missing_blocks=enc.column_slices(),
    )
    ds.reseed(3)
    rows = np.stack([ds[i][0][1].numpy() for i in range(400)])
    age_masked = rows[:, 1] == 1
    sex_masked = rows[:, -1] == 1
    assert 0.15 < age_masked.mean() < 0.35 and 0.15 < sex_masked.mean() < 0.35
    np.testing.assert_array_equal(rows[age_masked, :2], [[0, 1]] * int(age_masked.sum()))
    untouched = ~age_masked & ~sex_masked
    np.testing.assert_array_equal(rows[untouched], feats[untouched])
    ds.reseed(3)
    again = np.stack([ds[i][0][1].numpy() for i in range(400)])
    np.testing.assert_array_equal(rows, again)  # replayable from the epoch seed
    plain = ManifestImageDataset(images, np.zeros(400, np.int64), prep, metadata=feats)
    np.testing.assert_array_equal(np.stack([plain[i][0][1].numpy() for i in range(5)]), feats[:5])


def test_tta_flips_the_image_and_not_the_metadata():
    import torch

    from skinml.data.torch_dataset import ManifestImageDataset
    from skinml.data.transforms import tta_views
    from skinml.modelfile.metadata import Preprocessing
    from skinml.models.factory import create_classifier
    from skinml.training.trainer import Trainer

    torch.manual_seed(0)
    model = create_classifier("test_resnet", 2, metadata_features=4).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    meta = rng.normal(size=(5, 4)).astype(np.float32)
    prep = Preprocessing((32, 32), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    ds = ManifestImageDataset(images, np.array([0, 1, 0, 1, 1]), prep, metadata=meta)
    trainer = Trainer(device="cpu", eval_batch_size=2, progress=False, channels_last=True)
    logits, targets = trainer.predict_logits(model, ds, tta=True)
    x = torch.stack([ds[i][0][0] for i in range(5)])
    m = torch.from_numpy(meta)
    with torch.no_grad():
        want = torch.stack([model(v, m) for v in tta_views(x)]).mean(0).numpy()
        plain = model(x, m).numpy()
    np.testing.assert_allclose(logits, want, atol=1e-5)
    assert np.abs(want - plain).max() > 1e-6  # the flips did something
    assert targets.tolist() == [0, 1, 0, 1, 1]
