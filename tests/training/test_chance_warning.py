"""A model at chance is called that: console summary, model card, ONNX metadata, predictor.

Every image is the same picture, so nothing separates melanoma from naevus: the trained
model gives every test image the same scores (AUC exactly 0.5), predicts one class for
all of them, and the validation-chosen threshold flags everything or nothing.
"""

from __future__ import annotations

import contextlib
import io
import shutil

import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def chance_run(tmp_path_factory, lesion_dataset_factory, shrunk_overrides):
    from hydra import compose, initialize_config_module

    from skinml.training.pipeline import run

    tmp = tmp_path_factory.mktemp("chance")
    manifest = lesion_dataset_factory(tmp / "data", n_per_class=16)
    images = sorted((manifest.parent / "images").glob("*.png"))
    for path in images[1:]:
        shutil.copyfile(images[0], path)  # one picture under every label
    overrides = shrunk_overrides(
        manifest, tmp, "trainer.max_epochs=1", "evaluation.gradcam_images=0"
    )
    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "tracking.log_model=false"])
    (tmp / "run").mkdir()
    return run(cfg, tmp / "run"), tmp


def test_the_run_itself_says_not_better_than_chance(chance_run):
    from skinml.cli.train import summary_lines

    outcome, _ = chance_run
    auc = outcome.test.headline["malignant_auc"]
    assert auc.value == pytest.approx(0.5)  # the premise: identical images, identical scores
    chance = [w for w in outcome.warnings if w.startswith("not better than chance")]
    assert chance == [
        f"not better than chance on this test set: AUC 0.50, 95% CI 0.50-0.50 "
        f"(n={outcome.test.n}); the interval includes 0.5"
    ]
    assert any("operating point is useless" in w for w in outcome.warnings)
    lines = summary_lines(outcome)
    assert lines[-len(outcome.warnings) :] == [
        f"WARNING: this model is {chance[0]}",
        *[f"WARNING: {w}" for w in outcome.warnings[1:]],
    ]


def test_card_onnx_metadata_and_predictor_repeat_the_warning(chance_run, tmp_path):
    from skinml.modelfile import read_metadata
    from skinml.predict.cli import main

    outcome, tmp = chance_run
    meta = read_metadata(outcome.onnx_path)
    assert meta.warnings == outcome.warnings and meta.warnings
    card = outcome.onnx_path.with_name("model.card.md").read_text()
    assert card.split("\n## ")[1].startswith("Warnings")
    assert f"**Warning: {outcome.warnings[0]}.**" in card
    assert "coarse (1x1 feature map): not a localisation" in card  # 32 px ResNet
    out = io.StringIO()
    images = tmp / "data" / "images"
    with contextlib.redirect_stdout(out):
        code = main([str(outcome.onnx_path), str(images), "-o", str(tmp_path / "p.csv")])
    assert code == 0
    last = out.getvalue().strip().splitlines()[-len(meta.warnings) :]
    assert last[0] == f"WARNING: this model is {meta.warnings[0]}"
