"""Predictor fixtures: a tiny hand-built skinml ONNX model (no torch needed) and test images.

The model is a real CAM-capable classifier graph (conv -> ReLU -> global average
pool -> linear), built with ``onnx.helper`` in well under a second, carrying the
same metadata document and tensor names that ``skinml-export`` writes. The
export tests cover the real exporter end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinml.modelfile.metadata import (
    Calibration,
    ModelMetadata,
    OperatingThreshold,
    Preprocessing,
    Provenance,
)

CLASSES = ("nv", "mel", "bkl")
TEMPERATURE = 2.0


def tiny_metadata(**overrides) -> ModelMetadata:
    fields = dict(
        task="image_classification",
        classes=CLASSES,
        malignant=("mel",),
        provenance=Provenance(skinml_version="test", created_utc="2026-11-23T00:00:00+00:00"),
        inputs={"image": "float32 [batch, 3, 32, 32]"},
        outputs={"logits": "raw", "probabilities": "calibrated", "cam": "CAM"},
        preprocessing=Preprocessing(
            input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)
        ),
        calibration=Calibration(temperature=TEMPERATURE, applied_in_graph=True),
        thresholds=(OperatingThreshold("malignant", 0.3, "test threshold"),),
        extra={
            "tensors": {
                "input": "image",
                "logits": "logits",
                "probabilities": "probabilities",
                "cam": "cam",
            },
            "cam": {"available": True, "method": "CAM"},
            "ood": {
                "score": "energy",
                "definition": "-logsumexp(logits)",
                "threshold": -1.0,
                "percentile": 95.0,
                "fitted_on": "validation",
                "n": 10,
            },
        },
    )
    fields.update(overrides)
    return ModelMetadata(**fields)


def tiny_graph(seed: int = 0, size: int = 32):
    """A CAM-capable classifier graph with the export's tensor names (onnx.ModelProto)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    k, c = len(CLASSES), 4
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (c, 3, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 1.0, (k, c)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, k).astype(np.float32), "fc_b"),
        numpy_helper.from_array(rng.normal(0, 0.1, (1, k, 1, 1)).astype(np.float32) * 0, "zero"),
        numpy_helper.from_array(np.array(TEMPERATURE, np.float32), "temp"),
        numpy_helper.from_array(np.array([1, k, 1, 1], np.int64), "bshape"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["image", "conv_w", "conv_b"], ["c1"], strides=[4, 4], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c1"], ["feats"]),
        helper.make_node("GlobalAveragePool", ["feats"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["pooled"]),
        helper.make_node("Gemm", ["pooled", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Div", ["logits", "temp"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probabilities"], axis=1),
        helper.make_node("Einsum", ["fc_w", "feats"], ["cam0"], equation="kc,nchw->nkhw"),
        helper.make_node("Reshape", ["fc_b", "bshape"], ["b4"]),
        helper.make_node("Add", ["cam0", "b4"], ["cam"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        _graph_outputs(k),
        inits,
    )
    return _checked_model(graph)


def write_tiny_model(path: Path, metadata: ModelMetadata | None = None, *, sidecar=True) -> Path:
    """Save the tiny graph with skinml metadata (and a SHA-256 sidecar) at ``path``."""
    import onnx

    from skinml.export.onnx_meta import embed_metadata
    from skinml.modelfile import write_sidecar

    raw = path.with_name(path.stem + ".raw.onnx")
    onnx.save_model(tiny_graph(), str(raw))
    embed_metadata(raw, path, metadata or tiny_metadata())
    raw.unlink()
    if sidecar:
        write_sidecar(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def lesion_image(seed: int, size=(60, 45)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = rng.normal(170, 25, size=(h, w, 3))
    mask = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) < (min(w, h) / 3) ** 2
    arr[mask] = [90 + 10 * (seed % 5), 60, 40]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Six good images in a nested folder (JPEG and PNG) plus a stray text file."""
    root = tmp_path / "clinic"
    (root / "sub").mkdir(parents=True)
    for i in range(4):
        lesion_image(i).save(root / f"img_{i}.jpg", quality=92)
    for i in range(4, 6):
        lesion_image(i).save(root / "sub" / f"img_{i}.png")
    (root / "notes.txt").write_text("not an image")
    return root


# -- a tiny metadata-fusion model (two graph inputs), also without torch -------------------------

FUSION_TRAIN_METADATA = {
    "age": [25, 40, 55, 70, ""],
    "sex": ["male", "female", "female", "male", "unknown"],
    "localization": ["back", "face", "lower extremity", "back", ""],
}


def tiny_fusion_encoding():
    from skinml.modelfile.metadata_input import fit_metadata_encoding

    return fit_metadata_encoding(["age", "sex", "localization"], FUSION_TRAIN_METADATA)


def tiny_fusion_graph(n_meta: int, seed: int = 1, size: int = 32):
    """image -> conv -> ReLU -> GAP; metadata -> Gemm -> ReLU; one Gemm over both; exact CAM."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    k, c, h = len(CLASSES), 4, 5
    w_img = rng.normal(0, 1.0, (k, c)).astype(np.float32)
    w_meta = rng.normal(0, 1.0, (k, h)).astype(np.float32)
    arrays = {
        "conv_w": rng.normal(0, 0.5, (c, 3, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, c).astype(np.float32),
        "m_w": rng.normal(0, 1.0, (h, n_meta)).astype(np.float32),
        "m_b": rng.normal(0, 0.1, h).astype(np.float32),
        "fc_w": np.concatenate([w_img, w_meta], axis=1),
        "fc_b": rng.normal(0, 0.1, k).astype(np.float32),
        "w_img": w_img,
        "w_meta": w_meta,
        "temp": np.array(TEMPERATURE, np.float32),
        "shape4": np.array([0, k, 1, 1], np.int64),
    }
    inits = [numpy_helper.from_array(v, n) for n, v in arrays.items()]
    nodes = [
        helper.make_node(
            "Conv", ["image", "conv_w", "conv_b"], ["c1"], strides=[4, 4], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c1"], ["feats"]),
        helper.make_node("GlobalAveragePool", ["feats"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["pooled"]),
        helper.make_node("Gemm", ["metadata", "m_w", "m_b"], ["m1"], transB=1),
        helper.make_node("Relu", ["m1"], ["emb"]),
        helper.make_node("Concat", ["pooled", "emb"], ["joint"], axis=1),
        helper.make_node("Gemm", ["joint", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Div", ["logits", "temp"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probabilities"], axis=1),
        helper.make_node("Gemm", ["emb", "w_meta", "fc_b"], ["term"], transB=1),
        helper.make_node("Reshape", ["term", "shape4"], ["term4"]),
        helper.make_node("Einsum", ["w_img", "feats"], ["cam0"], equation="kc,nchw->nkhw"),
        helper.make_node("Add", ["cam0", "term4"], ["cam"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_fusion",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size]),
            helper.make_tensor_value_info("metadata", TensorProto.FLOAT, ["batch", n_meta]),
        ],
        _graph_outputs(k),
        inits,
    )
    return _checked_model(graph)


def write_tiny_fusion_model(path: Path, *, with_encoding: bool = True) -> Path:
    """The tiny fusion graph with skinml metadata documenting its ``metadata`` input."""
    import onnx

    from skinml.export.onnx_meta import embed_metadata
    from skinml.modelfile import write_sidecar

    enc = tiny_fusion_encoding()
    base = tiny_metadata()
    extra = {**base.extra, "tensors": {**base.extra["tensors"], "metadata": "metadata"}}
    if with_encoding:
        extra["metadata_input"] = enc.to_dict()
    meta = tiny_metadata(
        inputs={**base.inputs, "metadata": f"float32 [batch, {enc.n_features}]"}, extra=extra
    )
    raw = path.with_name(path.stem + ".raw.onnx")
    onnx.save_model(tiny_fusion_graph(enc.n_features), str(raw))
    embed_metadata(raw, path, meta)
    raw.unlink()
    write_sidecar(path)
    return path


@pytest.fixture(scope="session")
def tiny_fusion_model(tmp_path_factory) -> Path:
    return write_tiny_fusion_model(tmp_path_factory.mktemp("fusion") / "fusion.onnx")


def _graph_outputs(k: int) -> list:
    """The three documented outputs of a skinml image graph with ``k`` classes."""
    from onnx import TensorProto, helper

    return [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", k]),
        helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["batch", k, None, None]),
    ]


def _checked_model(graph):
    """An opset-17 model around ``graph``, checked by onnx."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
