"""A bundle calibrated on TTA logits exports a graph that computes exactly those logits.

Checked against the trainer's own ``predict_logits`` (the numbers calibration was fitted
on), for an image-only and a metadata-fusion network, at two batch sizes (dynamic axis).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from skinml.export import export_bundle
from skinml.export.quantize import stem_nodes
from skinml.export.synthetic import random_init_bundle, write_simulated_images
from skinml.modelfile import read_metadata
from skinml.modelfile.tta import TTA_VIEWS
from skinml.predict.scores import softmax
from skinml.training.trainer import Trainer

SIZE = (32, 32)


@pytest.fixture(scope="module", params=["image", "fusion"])
def tta_export(request, tmp_path_factory):
    """(bundle, ExportResult) of a random-init bundle whose calibration used TTA."""
    root = tmp_path_factory.mktemp(f"tta_{request.param}")
    fusion = request.param == "fusion"
    manifest = write_simulated_images(
        root / "data", per_class={"train": 2, "val": 3}, size=(40, 36), seed=2, with_metadata=fusion
    )
    bundle = random_init_bundle(
        manifest,
        input_size=SIZE,
        tta_views=TTA_VIEWS,
        metadata_columns=("age", "sex", "localization") if fusion else (),
        seed=7,
    )
    int8 = {} if fusion else {"quantize": "int8", "max_accuracy_loss": 1.0, "calibration_images": 6}
    return bundle, export_bundle(bundle, root / "out" / "model.onnx", **int8)


class _Inputs(torch.utils.data.Dataset):
    """``((image, metadata), target)`` or ``(image, target)`` items, as the training datasets."""

    def __init__(self, x: np.ndarray, m: np.ndarray | None):
        self.x, self.m = torch.from_numpy(x), None if m is None else torch.from_numpy(m)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return ((self.x[i], self.m[i]) if self.m is not None else self.x[i]), 0


def _feeds(bundle, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(seed)
    feeds = {"image": gen.normal(size=(batch, 3, *SIZE)).astype(np.float32)}
    n_meta = bundle.model_kwargs.get("metadata_features")
    if n_meta:
        feeds["metadata"] = gen.normal(size=(batch, n_meta)).astype(np.float32)
    return feeds


def test_file_records_the_views_and_verified_against_torch_with_them(tta_export):
    _, result = tta_export
    meta = read_metadata(result.onnx_path)
    assert meta.calibration.tta_views == TTA_VIEWS and meta.schema_version == "1.3"
    assert result.verification.passed and result.verification.n_images == 9
    card = result.card_path.read_text(encoding="utf-8")
    assert "test-time augmentation: flip views identity, hflip, vflip, hflip_vflip" in card


@pytest.mark.parametrize("batch", [1, 3])
def test_graph_equals_the_trainers_tta_logits_then_the_temperature(tta_export, batch):
    bundle, result = tta_export
    sess = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    feeds = _feeds(bundle, batch)
    logits, probs, cam = sess.run(["logits", "probabilities", "cam"], feeds)
    trainer = Trainer(device="cpu", tta=True, progress=False, channels_last=False)
    ds = _Inputs(feeds["image"], feeds.get("metadata"))
    want, _ = trainer.predict_logits(bundle.build_model(), ds)
    np.testing.assert_allclose(logits, want, atol=1e-4)
    temperature = read_metadata(result.onnx_path).calibration.temperature
    np.testing.assert_allclose(probs, softmax(want, temperature), atol=1e-5)
    # the averaged CAM still decomposes the averaged logit
    np.testing.assert_allclose(cam.mean(axis=(2, 3)), logits, atol=1e-4)


def test_cam_views_are_flipped_back_onto_the_input(tta_export):
    """Flipping the input permutes the views: the logits stay, the averaged map flips with it."""
    bundle, result = tta_export
    sess = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    feeds = _feeds(bundle, 2, seed=1)
    logits, cam = sess.run(["logits", "cam"], feeds)
    flipped = {**feeds, "image": np.ascontiguousarray(feeds["image"][..., ::-1])}
    logits_f, cam_f = sess.run(["logits", "cam"], flipped)
    np.testing.assert_allclose(logits_f, logits, atol=1e-5)
    np.testing.assert_allclose(cam_f, cam[..., ::-1], atol=1e-5)


def test_int8_still_finds_the_stem_behind_the_flips(tta_export):
    _, result = tta_export
    graph = onnx.load(str(result.onnx_path))
    stems = stem_nodes(graph)
    assert stems, "the stem reads the flipped views, and must still be kept in float"
    assert all(n.op_type == "Conv" for n in graph.graph.node if n.name in stems)
    if result.quantization is not None:  # the image-only export is also quantized
        assert result.quantization.float_stem_nodes >= 1
        assert read_metadata(result.int8_path).calibration.tta_views == TTA_VIEWS
