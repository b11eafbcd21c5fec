"""--tta per model file: reproduce how the calibration was fitted, never augment twice."""

from __future__ import annotations

import numpy as np
import pytest

from skinml.errors import ConfigError
from skinml.imaging.preprocess import preprocess
from skinml.imaging.read import read_image
from skinml.modelfile.metadata import Calibration, Provenance
from skinml.modelfile.tta import TTA_VIEWS, calibration_tta_views
from skinml.predict import ImagePredictor
from skinml.predict.cli import main
from skinml.predict.scores import softmax
from skinml.predict.tta import plan_tta

from .conftest import CLASSES, TEMPERATURE, lesion_image, tiny_metadata, write_tiny_model


def _calibrated(tta_views):
    return tiny_metadata(
        calibration=Calibration(temperature=TEMPERATURE, applied_in_graph=True, tta_views=tta_views)
    )


def _older(trainer_tta: bool | None, version: str = "1.1"):
    """An older file: no tta_views, and (maybe) the run's trainer.tta in its training config."""
    config = {} if trainer_tta is None else {"trainer": {"tta": trainer_tta}}
    prov = Provenance(skinml_version="0.1", created_utc="2026-01-01", training_config=config)
    return tiny_metadata(provenance=prov, schema_version=version)


def test_views_in_the_graph_make_tta_a_no_op_that_says_so():
    meta = _calibrated(TTA_VIEWS)
    assert plan_tta(meta, False).views == () and plan_tta(meta, False).note is None
    plan = plan_tta(meta, True, source="m.onnx")
    assert plan.views == () and plan.in_graph == TTA_VIEWS
    assert "m.onnx already averages the flip views" in plan.note and "changes nothing" in plan.note


@pytest.mark.parametrize("meta", [_calibrated(()), _older(False)], ids=["1.2", "1.1"])
def test_tta_is_refused_when_calibration_was_fitted_on_single_views(meta):
    assert plan_tta(meta, False).views == ()
    with pytest.raises(ConfigError, match="fitted on single-view predictions"):
        plan_tta(meta, True)


def test_an_older_file_from_a_tta_run_gets_logit_averaging_on_request():
    meta = _older(True, "1.0")
    assert calibration_tta_views(meta) == TTA_VIEWS
    default = plan_tta(meta, False)
    assert default.views == () and "add --tta to reproduce the training run" in default.note
    plan = plan_tta(meta, True)
    assert plan.views == TTA_VIEWS and plan.temperature == TEMPERATURE
    assert "ood_flag is approximate" in plan.note


def test_a_file_that_records_nothing_averages_logits_with_a_note():
    meta = _older(None)
    assert calibration_tta_views(meta) is None and plan_tta(meta, False).note is None
    plan = plan_tta(meta, True)
    assert plan.views == TTA_VIEWS and "does not record" in plan.note


def test_predictor_does_not_flip_again_when_the_graph_averages_views(tmp_path):
    model = write_tiny_model(tmp_path / "tta.onnx", _calibrated(TTA_VIEWS))
    img = tmp_path / "a.png"
    lesion_image(2, size=(50, 70)).save(img)
    plain = ImagePredictor(model).predict_paths([img])[0]
    flagged = ImagePredictor(model, tta=True).predict_paths([img])[0]
    assert [flagged[f"p_{c}"] for c in CLASSES] == [plain[f"p_{c}"] for c in CLASSES]


def test_an_older_tta_file_keeps_its_default_output_and_averages_logits_on_request(tmp_path):
    model = write_tiny_model(tmp_path / "old.onnx", _older(True, "1.0"))
    img = tmp_path / "a.png"
    lesion_image(4, size=(50, 70)).save(img)
    plain, tta = ImagePredictor(model), ImagePredictor(model, tta=True)
    x = preprocess(read_image(img), plain.metadata.preprocessing)[None]
    run = [plain.session.run(["logits", "probabilities"], {"image": v.copy()}) for v in _flips(x)]
    row = plain.predict_paths([img])[0]
    np.testing.assert_allclose([row[f"p_{c}"] for c in CLASSES], run[0][1][0], atol=1e-6)
    logits = np.mean([r[0] for r in run], axis=0)
    row = tta.predict_paths([img])[0]
    want = softmax(logits, TEMPERATURE)[0]
    np.testing.assert_allclose([row[f"p_{c}"] for c in CLASSES], want, atol=1e-6)


def test_cli_refuses_tta_and_describe_says_why(tmp_path, capsys):
    model = write_tiny_model(tmp_path / "single.onnx", _calibrated(()))
    img = tmp_path / "a.png"
    lesion_image(1).save(img)
    assert main([str(model), str(img), "-o", str(tmp_path / "p.csv"), "--tta"]) == 2
    err = capsys.readouterr().err
    assert "--tta is not available" in err and "trainer.tta=true" in err
    assert not (tmp_path / "p.csv").exists()
    assert main([str(model), "--describe"]) == 0
    assert "test-time augmentation: none" in capsys.readouterr().out


def test_cli_tells_an_older_tta_files_user_about_tta(tmp_path, capsys):
    model = write_tiny_model(tmp_path / "old.onnx", _older(True, "1.0"))
    img = tmp_path / "a.png"
    lesion_image(1).save(img)
    assert main([str(model), str(img), "-o", str(tmp_path / "p.csv"), "--no-progress"]) == 0
    assert "add --tta to reproduce the training run" in capsys.readouterr().err


def _flips(x):
    return [x, x[..., ::-1], x[..., ::-1, :], x[..., ::-1, ::-1]]
