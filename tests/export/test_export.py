"""skinml-export: one verified, self-contained, documented ONNX file (and int8 when asked)."""

from __future__ import annotations

import csv

import numpy as np
import onnxruntime as ort
import pytest
import torch

from skinml.export.graph import ExportableClassifier, cam_support
from skinml.imaging.preprocess import preprocess
from skinml.imaging.read import read_image
from skinml.integrity.checksums import sha256_file
from skinml.modelfile import read_metadata, verify_sidecar

from .conftest import INPUT_SIZE


def val_images(exported, n=8):
    with open(exported.manifest, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "val"]
    return [exported.manifest.parent / r["image"] for r in rows[:n]]


def test_writes_one_self_contained_file_with_sidecar_and_card(exported):
    files = sorted(p.name for p in exported.onnx_path.parent.iterdir())
    assert files == [
        "model.card.html",
        "model.card.md",
        "model.int8.card.html",
        "model.int8.card.md",
        "model.int8.onnx",
        "model.int8.onnx.sha256",
        "model.onnx",
        "model.onnx.sha256",
    ]  # no external-data files
    assert verify_sidecar(exported.onnx_path) is True
    assert verify_sidecar(exported.int8_path) is True
    card = exported.onnx_path.with_name("model.card.md").read_text()
    assert sha256_file(exported.onnx_path) in card
    assert "| 1 | mel | yes |" in card and "Untrained (random init)" in card
    assert f"model file: {exported.onnx_path}" in exported.stdout


def test_metadata_documents_tensors_ood_and_verification(exported):
    meta = read_metadata(exported.onnx_path)
    assert meta.classes == ("nv", "mel", "bkl") and meta.malignant == ("mel",)
    assert set(meta.inputs) == {"image"}
    assert set(meta.outputs) == {"logits", "probabilities", "cam"}
    assert "softmax(logits / 1.5)" in meta.outputs["probabilities"]
    assert meta.calibration.applied_in_graph and meta.calibration.temperature == 1.5
    assert meta.preprocessing.resize == "resize_shorter_center_crop"
    assert meta.extra["tensors"]["cam"] == "cam" and meta.extra["cam"]["available"]
    ver = meta.extra["verification"]
    assert ver["passed"] and ver["n_images"] == 24 and ver["max_abs_diff_probabilities"] <= 1e-4
    ood = meta.extra["ood"]
    assert ood["score"] == "energy" and ood["fitted_on"] == "validation" and ood["n"] == 24
    assert meta.extra["export"]["exporter"] == "dynamo"
    assert meta.extra["export"]["opset"] >= 17
    assert "git_commit" in meta.extra["export"] and "exported_utc" in meta.extra["export"]
    assert meta.provenance.git_commit == meta.extra["export"]["git_commit"]  # filled when absent
    assert meta.provenance.data_fingerprint == "simulated"  # training provenance is kept


def test_graph_has_dynamic_batch_and_matches_torch(exported):
    sess = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "image"
    assert isinstance(sess.get_inputs()[0].shape[0], str)  # symbolic batch axis
    meta = read_metadata(exported.onnx_path, session=sess)
    x = np.stack([preprocess(read_image(p), meta.preprocessing) for p in val_images(exported, 5)])
    model = exported.bundle.build_model()
    wrapper = ExportableClassifier(model, 1.5).eval()
    with torch.no_grad():
        t_probs = wrapper(torch.from_numpy(x))[1].numpy()
    for batch in (x[:1], x):
        logits, probs, cam = sess.run(["logits", "probabilities", "cam"], {"image": batch})
        n = len(batch)
        assert np.abs(probs - t_probs[:n]).max() <= 1e-4
        assert (probs.argmax(1) == t_probs[:n].argmax(1)).all()
        # the CAM decomposes the logit: its spatial mean is the logit
        np.testing.assert_allclose(cam.mean(axis=(2, 3)), logits, atol=1e-4)
    assert cam.shape[:2] == (5, 3) and cam.shape[2] == INPUT_SIZE[0] // 32


def int8_weight_range(path) -> tuple[int, int]:
    """Smallest and largest stored value over the int8 weight tensors of a QDQ model."""
    import onnx
    from onnx import numpy_helper

    values = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(path)).graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4  # conv weights
    ]
    assert values, "no int8 convolution weights in the model"
    return min(int(v.min()) for v in values), max(int(v.max()) for v in values)


def test_int8_model_reports_its_accuracy_against_fp32(exported):
    meta = read_metadata(exported.int8_path)
    q = meta.extra["quantization"]
    assert q["format"] == "QDQ" and q["calibration_split"] == "train"
    assert q["calibration_images"] == 16 and q["validation_images"] == 24
    assert q["accepted"] and q["max_accuracy_loss_points"] == 100.0
    assert q["accuracy_loss_points"] == pytest.approx(
        100 * (q["accuracy_fp32"] - q["accuracy_int8"])
    )
    assert 0 <= q["top1_agreement_with_fp32"] <= 1
    assert meta.extra["ood"]["model"] == "int8"
    assert meta.extra["ood"]["threshold"] == pytest.approx(q["ood_threshold_int8"])
    sess = ort.InferenceSession(str(exported.int8_path), providers=["CPUExecutionProvider"])
    nodes = __import__("onnx").load(str(exported.int8_path)).graph.node
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in nodes}
    # 7-bit weights by default: no 16-bit saturation on CPUs without VNNI
    assert q["weight_type"] == "int8 (per-channel, 7-bit range)"
    lo, hi = int8_weight_range(exported.int8_path)
    assert -64 <= lo < 0 < hi <= 64  # onnxruntime: symmetric [-64, 64]; 2 x 255 x 64 < 2**15
    # the stem stays in float: a convolution still reads the raw input image
    assert q["float_stem_nodes"] >= 1
    assert any(n.op_type == "Conv" and n.input[0] == "image" for n in nodes)
    x = np.zeros((2, 3, *INPUT_SIZE), np.float32)
    probs = sess.run(["probabilities"], {"image": x})[0]
    # the head stays in float: calibrated probabilities are not rounded to 1/255 steps
    assert not np.allclose(probs * 255, np.round(probs * 255), atol=1e-3)


def test_predictor_on_the_exported_file_matches_pytorch(exported, tmp_path):
    from skinml.predict import run_predictions

    paths = val_images(exported, 6)
    out = run_predictions(
        exported.onnx_path, paths, tmp_path / "p.csv", heatmap_dir=tmp_path / "heat", progress=False
    )
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    meta = read_metadata(exported.onnx_path)
    x = np.stack([preprocess(read_image(p), meta.preprocessing) for p in paths])
    with torch.no_grad():
        probs = ExportableClassifier(exported.bundle.build_model(), 1.5)(torch.from_numpy(x))[1]
    got = np.array([[float(r[f"p_{c}"]) for c in meta.classes] for r in rows])
    np.testing.assert_allclose(got, probs.numpy(), atol=1e-4)
    assert all(r["status"] == "ok" and r["heatmap"] for r in rows)


def test_cam_support_refuses_heads_that_are_not_pool_plus_linear():
    import timm

    vit = timm.create_model("test_vit", pretrained=False, num_classes=3).eval()
    support = cam_support(vit, (160, 160))
    assert not support.available and "axes" in support.reason
    resnet = timm.create_model("test_resnet", pretrained=False, num_classes=3).eval()
    ok = cam_support(resnet, INPUT_SIZE)
    assert ok.available and ok.feature_shape[1:] == (2, 2)
