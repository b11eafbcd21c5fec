"""The model-file metadata document: round trip, validation, refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from skinml.errors import ModelFileError
from skinml.modelfile.metadata import (
    Calibration,
    MetricWithCI,
    ModelMetadata,
    OperatingThreshold,
    Preprocessing,
    Provenance,
)


def _meta(**overrides) -> ModelMetadata:
    kw = dict(
        task="image_classification",
        classes=("mel", "nv"),
        malignant=("mel",),
        provenance=Provenance(skinml_version="0.1.0", created_utc="2026-11-23T00:00:00+00:00"),
        inputs={"image": "float32 N×3×64×64, normalised"},
        outputs={"probabilities": "calibrated class probabilities"},
        preprocessing=Preprocessing(input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)),
        calibration=Calibration(temperature=1.7),
        thresholds=(OperatingThreshold("malignant", 0.31, "sensitivity >= 0.95 on validation"),),
        metrics={"test_accuracy": MetricWithCI(0.8, 0.75, 0.85, n=200)},
    )
    kw.update(overrides)
    return ModelMetadata(**kw)


def test_round_trip_is_exact():
    meta = _meta()
    again = ModelMetadata.from_json(meta.to_json())
    assert again == meta
    assert again.threshold("malignant").threshold == pytest.approx(0.31)
    assert again.preprocessing.input_size == (64, 64)


def test_unsupported_schema_version_is_refused():
    doc = json.loads(_meta().to_json())
    doc["schema_version"] = "9.9"
    with pytest.raises(ModelFileError, match=r"unsupported .* schema version '9\.9'"):
        ModelMetadata.from_json(json.dumps(doc))


def test_missing_fields_are_named():
    doc = json.loads(_meta().to_json())
    del doc["classes"]
    with pytest.raises(ModelFileError, match="classes"):
        ModelMetadata.from_json(json.dumps(doc))


def test_malignant_must_be_a_class():
    with pytest.raises(ModelFileError, match="not among the classes"):
        _meta(malignant=("bcc",))


def test_image_model_needs_preprocessing():
    with pytest.raises(ModelFileError, match="preprocessing"):
        _meta(preprocessing=None)


def test_tta_views_round_trip_as_a_tuple():
    meta = _meta(calibration=Calibration(temperature=1.7, tta_views=("identity", "hflip")))
    again = ModelMetadata.from_json(meta.to_json())
    assert again == meta and again.calibration.tta_views == ("identity", "hflip")
    assert again.schema_version == "1.3"


def test_the_decode_policy_round_trips():
    meta = _meta(preprocessing=replace(_meta().preprocessing, decode_min_side=256))
    again = ModelMetadata.from_json(meta.to_json())
    assert again.preprocessing.decode_min_side == 256


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_a_file_before_1_3_keeps_its_exact_decode(version):
    """Files trained on every decoded pixel must not silently switch to reduced decoding."""
    doc = json.loads(_meta().to_json())
    doc["schema_version"] = version
    del doc["preprocessing"]["decode_min_side"]  # files before 1.3 never had the field
    assert ModelMetadata.from_json(json.dumps(doc)).preprocessing.decode_min_side is None


@pytest.mark.parametrize("side", [0, -3, 2.5, "256", True])
def test_a_malformed_decode_policy_is_refused(side):
    doc = json.loads(_meta().to_json())
    doc["preprocessing"]["decode_min_side"] = side
    with pytest.raises(ModelFileError, match="decode_min_side"):
        ModelMetadata.from_json(json.dumps(doc))


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_an_older_file_still_loads_and_records_no_tta(version):
    doc = json.loads(_meta().to_json())
    doc["schema_version"] = version
    del doc["calibration"]["tta_views"]  # files before 1.2 never had the field
    meta = ModelMetadata.from_json(json.dumps(doc))
    assert meta.schema_version == version and meta.calibration.tta_views is None
    assert meta.calibration.temperature == pytest.approx(1.7)


@pytest.mark.parametrize(
    ("views", "message"),
    [(["identity", "rot90"], r"unknown views \['rot90'\]"), ("hflip", "tta_views is 'hflip'")],
)
def test_unknown_or_malformed_tta_views_are_refused(views, message):
    doc = json.loads(_meta().to_json())
    doc["calibration"]["tta_views"] = views
    with pytest.raises(ModelFileError, match=message):
        ModelMetadata.from_json(json.dumps(doc))
