"""Export fails loudly: disagreement with PyTorch, int8 accuracy loss, missing data."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest

from skinml.export import export_bundle
from skinml.export.api import ExportResult, _quantize
from skinml.export.errors import ExportError, ExportVerificationError, QuantizationRefusedError
from skinml.export.graph import ExportableClassifier
from skinml.export.images import split_images
from skinml.export.quantize import Int8Recipe, accuracy_loss_verdict
from skinml.export.verify import accuracy, verify_against_torch
from skinml.modelfile import read_metadata


def test_disagreement_with_pytorch_is_an_error_with_the_measured_difference(exported):
    sess = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    meta = read_metadata(exported.onnx_path, session=sess)
    val = split_images(exported.manifest, "val")
    wrong = ExportableClassifier(exported.bundle.build_model(), temperature=1.0)  # graph has 1.5
    with pytest.raises(ExportVerificationError, match=r"max \|Δp\| = [0-9.e-]+ \(tolerance 0.0001"):
        verify_against_torch(wrong, sess, val, meta.preprocessing, meta.classes)
    right = ExportableClassifier(exported.bundle.build_model(), temperature=1.5)
    report = verify_against_torch(right, sess, val, meta.preprocessing, meta.classes)
    assert report.passed and report.n_images == 24 and report.max_abs_diff_probabilities < 1e-5


def test_int8_is_refused_when_accuracy_drops_beyond_the_bound(exported, tmp_path, monkeypatch):
    import skinml.export.api as api

    fp32 = tmp_path / "model.onnx"
    shutil.copy(exported.onnx_path, fp32)
    meta = read_metadata(fp32)
    real_compare = api.compare_int8

    def degraded(*args, **kwargs):
        measured = real_compare(*args, **kwargs)
        measured["accuracy_int8"] = measured["accuracy_fp32"] - 0.125  # 3 of 24 images lost
        return measured

    monkeypatch.setattr(api, "compare_int8", degraded)
    result = ExportResult(
        fp32, fp32.with_name("model.onnx.sha256"), tmp_path / "c.md", "", meta, None, "dynamo"
    )  # type: ignore[arg-type]
    val = split_images(exported.manifest, "val")
    with pytest.raises(QuantizationRefusedError) as info:
        _quantize(result, exported.bundle, exported.manifest, val, 16, 0.005, 0, Int8Recipe())
    msg = str(info.value)
    assert "a loss of 12.50 points, above the allowed 0.50 points" in msg
    assert "no int8 file was written" in msg and str(fp32) in msg
    assert info.value.report.accepted is False
    assert not (tmp_path / "model.int8.onnx").exists()


def test_accuracy_loss_verdict():
    assert accuracy_loss_verdict(0.80, 0.796, 0.005) == (pytest.approx(0.4), True)
    assert accuracy_loss_verdict(0.80, 0.79, 0.005) == (pytest.approx(1.0), False)
    assert accuracy_loss_verdict(0.80, 0.81, 0.0)[1] is True  # int8 better: fine
    assert accuracy_loss_verdict(None, 0.5, 0.005) == (None, False)
    with pytest.raises(ExportError, match=r"fraction in \[0, 1\]"):
        accuracy_loss_verdict(0.8, 0.8, 5)


def test_missing_manifest_and_empty_split_are_explained(bundle_file, tmp_path):
    bundle, _ = bundle_file
    with pytest.raises(ExportError, match="--manifest PATH"):
        export_bundle(bundle, tmp_path / "m.onnx", validation_manifest=tmp_path / "gone.csv")
    only_train = tmp_path / "train_only.csv"
    only_train.write_text("image,label,split\na.png,nv,train\n")
    with pytest.raises(ExportError, match="no rows with split == 'val'"):
        export_bundle(bundle, tmp_path / "m.onnx", validation_manifest=only_train)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_failed_verification_writes_nothing(bundle_file, tmp_path, monkeypatch):
    import skinml.export.api as api

    real = api.verify_against_torch

    def against_wrong_torch(wrapper, *args, **kwargs):
        return real(ExportableClassifier(wrapper.model, 3.0), *args, **kwargs)

    monkeypatch.setattr(api, "verify_against_torch", against_wrong_torch)
    bundle, _ = bundle_file
    with pytest.raises(ExportVerificationError, match="the model file was NOT written"):
        export_bundle(bundle, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_export_from_an_mlflow_run(bundle_file, tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    from skinml.cli.export import main

    _, path = bundle_file
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)  # no global MLflow state
    experiment = client.create_experiment(
        "export-test", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    run_id = client.create_run(experiment).info.run_id
    client.log_artifact(run_id, str(path), artifact_path="bundle")
    client.set_terminated(run_id)
    out = tmp_path / "from_mlflow.onnx"
    code = main(["--mlflow-run", run_id, "--tracking-uri", uri, "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    meta = read_metadata(out)
    assert meta.provenance.mlflow_run_id == run_id
    assert main(["--mlflow-run", "0" * 32, "--tracking-uri", uri, "-o", str(out)]) == 2
    assert "cannot download 'bundle/model_bundle.pt'" in capsys.readouterr().err


def test_int8_recipe_rejects_unknown_methods_and_percentiles():
    with pytest.raises(ExportError, match=r"unknown int8 calibration method 'kl'.*minmax"):
        Int8Recipe(calibration="kl")
    with pytest.raises(ExportError, match=r"percentile must be in \[90, 100\], got 9.99"):
        Int8Recipe(calibration="percentile", percentile=9.99)
    assert Int8Recipe(calibration="percentile", percentile=99.99).describe() == (
        "uint8 (per-tensor, percentile 99.99)"
    )
    with pytest.raises(ExportError, match=r"float_first_convs must be >= 0, got -1"):
        Int8Recipe(float_first_convs=-1)


def test_first_conv_nodes_follow_graph_order_and_skip_the_stem():
    from onnx import TensorProto, helper

    from skinml.export.quantize import first_conv_nodes

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], name="stem"),
        helper.make_node("Clip", ["a"], ["b"], name="relu6"),
        helper.make_node("Conv", ["b", "w1"], ["c"], name="dw", group=4),
        helper.make_node("Conv", ["c", "w2"], ["d"], name="project"),
        helper.make_node("Conv", ["d", "w3"], ["y"], name="expand"),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]))
    assert first_conv_nodes(model, 2, skip=["stem"]) == ["dw", "project"]
    assert first_conv_nodes(model, 0, skip=["stem"]) == []
    assert first_conv_nodes(model, 9, skip=["stem"]) == ["dw", "project", "expand"]


def test_depthwise_nodes_are_the_grouped_convolutions():
    from onnx import TensorProto, helper

    from skinml.export.quantize import depthwise_nodes

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="pointwise"),
        helper.make_node("Conv", ["a", "w2"], ["b"], name="depthwise", group=4),
        helper.make_node("Conv", ["b", "w3"], ["y"], name="grouped_one", group=1),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    assert depthwise_nodes(helper.make_model(graph)) == ["depthwise"]


def test_cli_int8_recipe_options_reach_the_model_file(exported, tmp_path):
    import contextlib
    import io

    from skinml.cli.export import main

    out = tmp_path / "model.onnx"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                str(exported.bundle_path.parent),
                "-o",
                str(out),
                "--quantize",
                "int8",
                "--max-accuracy-loss",
                "1.0",
                "--calibration-images",
                "20",  # two unequal batches of 16 + 4 broke histogram calibration
                "--int8-calibration",
                "percentile",
                "--int8-percentile",
                "99.9",
                "--int8-float-depthwise",
                "--int8-float-first-convs",
                "2",
                "--no-int8-reduce-range",
            ]
        )
    assert code == 0, buf.getvalue()
    assert "histogram" not in buf.getvalue()  # onnxruntime's calibration chatter stays quiet
    q = read_metadata(out.with_name("model.int8.onnx")).extra["quantization"]
    assert q["activation_type"] == "uint8 (per-tensor, percentile 99.9)"
    assert q["calibration_images"] == 20 and q["float_stem_nodes"] >= 1
    assert q["float_first_conv_nodes"] == 2  # (this small test network has no depthwise)
    assert q["weight_type"] == "int8 (per-channel)"  # full 8-bit range asked for
    from tests.export.test_export import int8_weight_range

    lo, hi = int8_weight_range(out.with_name("model.int8.onnx"))
    assert lo < -64 or hi > 64
    card = out.with_name("model.int8.card.md").read_text()
    assert "percentile 99.9" in card and "kept in float: stem" in card
    assert "first convolutions after the stem (2 nodes)" in card


def test_accuracy_matches_labels_through_the_vocabulary():
    """A hand-made manifest's "Melanoma" is the model's mel, not an image left out."""
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    acc, n = accuracy(probs, ["Melanoma", "naevus", "nv", "psoriasis"], ("mel", "nv"))
    assert n == 3 and acc == pytest.approx(2 / 3)
