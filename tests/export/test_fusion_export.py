"""Exporting a metadata-fusion bundle: two named inputs, verified, int8 calibrated with metadata."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from skinml.errors import ManyErrors
from skinml.export import export_bundle
from skinml.export.errors import ExportError
from skinml.export.synthetic import random_init_bundle, write_simulated_images
from skinml.modelfile import read_metadata
from skinml.modelfile.metadata_input import MetadataEncoding

from .conftest import INPUT_SIZE

COLUMNS = ["age", "sex", "localization"]


@pytest.fixture(scope="module")
def fusion_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion_export")
    manifest = write_simulated_images(
        root / "data",
        per_class={"train": 6, "val": 4},
        size=(72, 56),
        seed=4,
        with_metadata=True,
    )
    bundle = random_init_bundle(manifest, input_size=INPUT_SIZE, metadata_columns=COLUMNS, seed=5)
    result = export_bundle(
        bundle,
        root / "out" / "fusion.onnx",
        quantize="int8",
        max_accuracy_loss=1.0,
        calibration_images=12,
    )
    return bundle, manifest, result


def test_graph_has_image_and_metadata_inputs_with_one_batch_axis(fusion_export):
    bundle, _, result = fusion_export
    sess = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in sess.get_inputs()}
    n = bundle.model_kwargs["metadata_features"]
    assert shapes == {"image": ["batch", 3, *INPUT_SIZE], "metadata": ["batch", n]}
    meta = read_metadata(result.onnx_path)
    assert meta.extra["export"]["dynamic_axes"] == {"image": [0], "metadata": [0]}
    assert MetadataEncoding.from_dict(meta.extra["metadata_input"]).n_features == n
    assert result.verification.passed and result.verification.n_images == 12
    gen = np.random.default_rng(0)
    for batch in (1, 5):
        x = gen.normal(size=(batch, 3, *INPUT_SIZE)).astype(np.float32)
        m = gen.normal(size=(batch, n)).astype(np.float32)
        logits, probs, cam = sess.run(None, {"image": x, "metadata": m})
        assert probs.shape == (batch, 3)
        np.testing.assert_allclose(cam.mean(axis=(2, 3)), logits, atol=1e-4)


def test_int8_keeps_the_metadata_branch_in_float(fusion_export):
    _, _, result = fusion_export
    q = result.quantization
    assert q is not None and q.accepted and q.calibration_images == 12
    assert q.float_metadata_nodes >= 3  # the MLP's two linear layers and their activations
    graph = onnx.load(str(result.int8_path)).graph
    readers = [n for n in graph.node if "metadata" in n.input]
    assert readers and all(n.op_type != "QuantizeLinear" for n in readers)
    meta8 = read_metadata(result.int8_path)
    assert meta8.extra["quantization"]["float_metadata_nodes"] == q.float_metadata_nodes
    sess = ort.InferenceSession(str(result.int8_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image", "metadata"]


def test_bundle_whose_network_and_encoding_disagree_is_refused(fusion_export, tmp_path):
    bundle, _, _ = fusion_export
    extra = {k: v for k, v in bundle.metadata.extra.items() if k != "metadata_input"}
    broken = dataclasses.replace(bundle, metadata=dataclasses.replace(bundle.metadata, extra=extra))
    with pytest.raises(ExportError, match="do not belong together"):
        export_bundle(broken, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_manifest_without_the_metadata_columns_is_refused(fusion_export, tmp_path):
    import pandas as pd

    bundle, manifest, _ = fusion_export
    moved = tmp_path / "manifest.csv"
    pd.read_csv(manifest).drop(columns=["localization"]).to_csv(moved, index=False)
    shutil.copytree(manifest.parent / "images", tmp_path / "images")
    with pytest.raises(ExportError, match=r"needs the metadata columns \['localization'\]"):
        export_bundle(bundle, tmp_path / "x.onnx", validation_manifest=moved)


def test_bad_metadata_in_the_validation_manifest_names_the_row(fusion_export, tmp_path):
    import pandas as pd

    bundle, manifest, _ = fusion_export
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(frame["split"] == "val")[0])
    frame.loc[row, "age"] = "old"
    moved = tmp_path / "manifest.csv"
    frame.to_csv(moved, index=False)
    shutil.copytree(manifest.parent / "images", tmp_path / "images")
    with pytest.raises(ManyErrors, match=rf"row {row + 2}, column 'age': 'old' is not a number"):
        export_bundle(bundle, tmp_path / "x.onnx", validation_manifest=moved)


def test_cli_report_names_the_second_input(fusion_export, capsys):
    from skinml.cli.export import _report

    _, _, result = fusion_export
    _report(result)
    out = capsys.readouterr().out
    assert "second input 'metadata'" in out and "age, sex, localization" in out
