"""Test-time augmentation means the same thing in training, in the model file and in skinml-predict.

A shrunk real run (with and without ``trainer.tta``) exports its model file; ``skinml-predict``
with default options on the run's test images must give the probabilities the run recorded
in ``predictions_test.csv`` (from which its metrics, temperature and thresholds came).
The ``photos`` run trains on 640x520 JPEGs, which both training and the predictor decode at
reduced DCT scale, as the model file records.
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


@pytest.fixture(
    scope="module",
    params=[(True, False), (False, False), (True, True)],
    ids=["tta", "no_tta", "tta_photos"],
)
def finished(request, tmp_path_factory, lesion_dataset_factory, shrunk_overrides):
    """(tta, RunOutcome) of a four-epoch run that exported ``model.onnx``."""
    from skinml.training.pipeline import run

    from .conftest import compose_train_config

    tta, photos = request.param
    tmp = tmp_path_factory.mktemp("photos" if photos else ("tta" if tta else "no_tta"))
    photo_args = {"size": (640, 520), "fmt": "jpg"} if photos else {}
    manifest = lesion_dataset_factory(tmp / "data", n_per_class=24, **photo_args)
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


def test_the_model_file_records_the_decode_training_used(finished):
    """Training decoded the run's JPEGs at reduced scale; the file says so for the predictor."""
    from skinml.imaging.preprocess import fast_decode_min_side
    from skinml.imaging.read import decode_image

    _, outcome = finished
    prep = read_metadata(outcome.onnx_path).preprocessing
    assert prep.decode_min_side == fast_decode_min_side(prep.input_size)
    recorded = pd.read_csv(outcome.run_dir / "predictions_test.csv")
    first = outcome.run_dir / recorded["image"].iloc[0]
    assert first.is_file()
    if first.suffix == ".jpg":  # the photos run: 640x520 -> decoded at 1/2
        assert decode_image(first, min_decoded_side=prep.decode_min_side).reduction == 2


def test_single_views_would_not_reproduce_a_tta_run(finished):
    """Guards the test above: with TTA the views' average differs from the identity view."""
    import torch

    from skinml.imaging.preprocess import decode_for_model, preprocess
    from skinml.training.bundle import ModelBundle

    tta, outcome = finished
    if not tta:
        pytest.skip("only a TTA run has something to tell apart")
    bundle = ModelBundle.load(outcome.run_dir)
    meta = bundle.metadata
    prep = meta.preprocessing
    recorded = pd.read_csv(outcome.run_dir / "predictions_test.csv")
    x = np.stack(
        [
            preprocess(decode_for_model(outcome.run_dir / p, meta.preprocessing).image, prep)
            for p in recorded["image"]
        ]
    )
    with torch.no_grad():
        logits = bundle.build_model()(torch.from_numpy(x)).double()
    single = torch.softmax(logits / meta.calibration.temperature, dim=1).numpy()
    assert np.abs(single - _probabilities(recorded, meta.classes)).max() > 10 * TOLERANCE


def test_model_file_and_card_record_the_tta_views(finished):
    tta, outcome = finished
    meta = read_metadata(outcome.onnx_path)
    assert meta.schema_version == "1.3"
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
