"""A model file's warnings reach the reader: model card first section, predictor's last line.

The tiny hand-built model stands in for an exported one (no torch needed); the
training tests check that a model at chance writes these warnings in the first place.
"""

from __future__ import annotations

import contextlib
import io
import json

from skinml.export.card import render_card
from skinml.modelfile.metadata import MetricWithCI, ModelMetadata
from tests.predict.conftest import tiny_metadata, write_tiny_model

CHANCE = "not better than chance on this test set: AUC 0.59, 95% CI 0.41-0.77 (n=30)"
USELESS = (
    "the malignancy operating point is useless on this test set: it flags none of the "
    "8 malignant cases (sensitivity 0/8 (0.000), 95% CI 0.000-0.324)"
)


def _metadata(**overrides) -> ModelMetadata:
    base = tiny_metadata()
    extra = {
        **base.extra,
        "cam": {"available": True, "method": "CAM", "coarse": "coarse (1x1 feature map): x"},
        "training": {
            "best_epoch": 3,
            "epochs_run": 5,
            "max_epochs": 15,
            "monitor": "val_balanced_accuracy",
            "best_score": 0.71,
            "stopped_early": True,
        },
    }
    metrics = {
        "test_malignant_sensitivity": MetricWithCI(
            1.0, 0.6756, 1.0, "test", 30, 0, 0, "wilson", 8, 8
        ),
        "test_macro_auc": MetricWithCI(0.59, 0.41, 0.77, "test", 30, 200, 0),
    }
    fields = {"warnings": (CHANCE, USELESS), "metrics": metrics, "extra": extra}
    return tiny_metadata(**{**fields, **overrides})


def test_card_leads_with_the_warnings_and_shows_counts_with_wilson_bounds():
    card = render_card(_metadata(), "model.onnx", "0" * 64)
    sections = card.split("\n## ")
    assert sections[1].startswith("Warnings")  # before intended use, classes and metrics
    assert f"**Warning: {CHANCE}.**" in card and USELESS in card
    assert "| test_malignant_sensitivity | test | 8/8 (1.000) | 0.676–1.000 | Wilson |" in card
    assert "| test_macro_auc | test | 0.590 | 0.410–0.770 | bootstrap |" in card
    assert "**coarse (1x1 feature map): x**" in card
    assert "best epoch 3 of 5 run (max 15, stopped early)" in card
    assert "## Warnings" not in render_card(tiny_metadata(), "model.onnx", "0" * 64)


def test_warnings_travel_in_the_model_file_and_older_files_still_read(tmp_path):
    meta = _metadata()
    again = ModelMetadata.from_json(meta.to_json())
    assert again.warnings == (CHANCE, USELESS)
    assert again.metrics["test_malignant_sensitivity"].denominator == 8
    doc = json.loads(tiny_metadata().to_json())
    doc["schema_version"] = "1.0"  # written before warnings and Wilson counts existed
    del doc["warnings"]
    old = ModelMetadata.from_json(json.dumps(doc))
    assert old.warnings == () and old.schema_version == "1.0"


def test_predict_closes_with_the_model_warnings(tmp_path, image_folder):
    from skinml.predict.cli import main

    model = write_tiny_model(tmp_path / "chance.onnx", _metadata())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        args = [str(model), str(image_folder), "-o", str(tmp_path / "p.csv"), "--no-progress"]
        code = main([*args, "--heatmaps", str(tmp_path / "heat")])
    assert code == 0
    lines = out.getvalue().strip().splitlines()
    assert lines[-2:] == [f"WARNING: this model is {CHANCE}", f"WARNING: {USELESS}"]
    assert any(
        line.startswith("heatmaps in") and "coarse (1x1 feature map)" in line for line in lines
    )


def test_predict_without_warnings_closes_as_before(tmp_path, tiny_model, image_folder):
    from skinml.predict.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([str(tiny_model), str(image_folder), "-o", str(tmp_path / "p.csv"), "--no-progress"])
    assert "WARNING" not in out.getvalue()


def test_card_says_in_words_what_the_model_does_and_how_well():
    card = render_card(_metadata(), "model.onnx", "0" * 64)
    brief = card.split("## In brief")[1].split("\n## ")[0]
    assert "flagged 8 of 8 malignant lesions (95% CI 0.68–1.00)" in brief
    assert "AUC 0.59 (95% CI 0.41–0.77)" in brief
    assert card.index("## Warnings") < card.index("## In brief") < card.index("## Classes")


def test_html_card_puts_warnings_in_the_red_box_and_escapes_text_from_the_run():
    from skinml.export.card import card_html

    meta = _metadata(intended_use="<script>alert(1)</script> triage <b>only</b>")
    page = card_html(render_card(meta, "model.onnx", "0" * 64))
    assert '<div class="verdict bad"><ul>' in page and CHANCE in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<h1>") == 1 and "<table>" in page


def test_card_names_the_bias_corrected_ece_and_says_which_ece_the_calibration_line_shows():
    ece = MetricWithCI(0.004, 0.0, 0.025, "test", 600, 1000, 0, "bias-corrected basic bootstrap")
    card = render_card(_metadata(metrics={"test_ece": ece}), "model.onnx", "0" * 64)
    assert "| test_ece | test | 0.004 | 0.000–0.025 | bias-corrected bootstrap |" in card
    assert "(plug-in; the metrics table gives the bias-corrected ECE" in card
    plain = render_card(_metadata(), "model.onnx", "0" * 64)  # e.g. a risk model: no such row
    assert "(plug-in)" in plain and "bias-corrected ECE" not in plain
