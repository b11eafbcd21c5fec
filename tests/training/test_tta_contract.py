"""Test-time augmentation means the same thing in training, in the model file and in skinml-predict.

A shrunk real run (with and without ``trainer.tta``) exports its model file; ``skinml-predict``
with default options on the run's test images must give the probabilities the run recorded
in ``predictions_test.csv`` (from which its metrics, temperature and thresholds came).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from skinml.modelfile import read_metadata
from skinml.modelfile.tta import TTA_VIEWS
from skinml.predict.cli import main as predict_main

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=[True, False], ids=["tta", "no_tta"])
def finished(request, tmp_path_factory, lesion_dataset_factory, shrunk_overrides):
    """(tta, RunOutcome) of a four-epoch run that exported ``model.onnx``."""
    from skinml.training.pipeline import run

    from .conftest import compose_train_config

    tta = request.param
    tmp = tmp_path_factory.mktemp("tta" if tta else "no_tta")
    manifest = lesion_dataset_factory(tmp / "data", n_per_class=24)
    overrides = shrunk_overrides(
        manifest,
        tmp,
        f"trainer.tta={str(tta).lower()}",
        "trainer.max_epochs=4",
        "evaluation.gradcam_images=0",
        "tracking.log_model=false",
    )
    (tmp / "run").mkdir()
    outcome = run(compose_train_config(overrides), tmp / "run")
    assert outcome.onnx_path is not None and outcome.onnx_path.is_file()
    return tta, outcome


def _predict(outcome, out, *flags) -> int:
    """``skinml-predict model.onnx predictions_test.csv -o out``: its image column is the run's."""
    return predict_main(
        [
            str(outcome.onnx_path),
            str(outcome.run_dir / "predictions_test.csv"),
            "-o",
            str(out),
            "--no-progress",
            *flags,
        ]
    )


def _probabilities(frame: pd.DataFrame, classes) -> np.ndarray:
    return frame[[f"p_{c}" for c in classes]].to_numpy(dtype=np.float64)


def test_predictor_default_reproduces_the_runs_test_predictions(finished, tmp_path):
    _, outcome = finished
    recorded = pd.read_csv(outcome.run_dir / "predictions_test.csv")
    assert _predict(outcome, tmp_path / "p.csv") == 0
    got = pd.read_csv(tmp_path / "p.csv")
    assert (got["status"] == "ok").all() and list(got["input"]) == list(recorded["image"])
    classes = read_metadata(outcome.onnx_path).classes
    diff = np.abs(_probabilities(got, classes) - _probabilities(recorded, classes))
    assert diff.max() <= TOLERANCE, f"max |p_predict - p_run| = {diff.max():.3g}"
    assert list(got["predicted_class"]) == list(recorded["predicted"])


def test_single_views_would_not_reproduce_a_tta_run(finished):
    """Guards the test above: with TTA the views' average differs from the identity view."""
    import torch

    from skinml.imaging.preprocess import preprocess
    from skinml.imaging.read import read_image
    from skinml.training.bundle import ModelBundle

    tta, outcome = finished
    if not tta:
        pytest.skip("only a TTA run has something to tell apart")
    bundle = ModelBundle.load(outcome.run_dir)
    meta = bundle.metadata
    recorded = pd.read_csv(outcome.run_dir / "predictions_test.csv")
    x = np.stack(
        [preprocess(read_image(outcome.run_dir / p), meta.preprocessing) for p in recorded["image"]]
    )
    with torch.no_grad():
        logits = bundle.build_model()(torch.from_numpy(x)).double()
    single = torch.softmax(logits / meta.calibration.temperature, dim=1).numpy()
    assert np.abs(single - _probabilities(recorded, meta.classes)).max() > 10 * TOLERANCE


def test_model_file_and_card_record_the_tta_views(finished):
    tta, outcome = finished
    meta = read_metadata(outcome.onnx_path)
    assert meta.schema_version == "1.2"
    assert meta.calibration.tta_views == (TTA_VIEWS if tta else ())
    assert meta.calibration.applied_in_graph and meta.extra["verification"]["passed"]
    card = outcome.onnx_path.with_name("model.card.md").read_text(encoding="utf-8")
    if tta:
        assert "test-time augmentation: flip views identity, hflip, vflip, hflip_vflip" in card
        assert "mean over the test-time flip views" in meta.outputs["logits"]
    else:
        assert "test-time augmentation: none" in card


def test_tta_flag_never_augments_twice(finished, tmp_path, capsys):
    tta, outcome = finished
    code = _predict(outcome, tmp_path / "tta.csv", "--tta")
    err = capsys.readouterr().err
    if not tta:
        assert code == 2 and "fitted on single-view predictions" in err
        assert not (tmp_path / "tta.csv").exists()
        return
    assert code == 0 and "--tta changes nothing" in err
    assert _predict(outcome, tmp_path / "plain.csv") == 0
    with_flag, plain = pd.read_csv(tmp_path / "tta.csv"), pd.read_csv(tmp_path / "plain.csv")
    classes = read_metadata(outcome.onnx_path).classes
    np.testing.assert_array_equal(
        _probabilities(with_flag, classes), _probabilities(plain, classes)
    )
