"""The patient-metadata encoding: fitted on train, stored in the model file, same everywhere."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from skinml.errors import ConfigError, ModelFileError
from skinml.modelfile.metadata_input import (
    MetadataEncoding,
    MetadataValueError,
    fit_metadata_encoding,
)

TRAIN = {
    "age": [30, 50, "70", None, float("nan"), "unknown"],
    "sex": ["male", "Female", " FEMALE ", "unknown", None, "male"],
    "localization": ["back", "lower extremity", "Lower_Extremity", "face", "unknown", ""],
}


@pytest.fixture
def encoding() -> MetadataEncoding:
    return fit_metadata_encoding(["age", "sex", "localization"], TRAIN)


def test_fitted_features_and_order(encoding):
    assert encoding.feature_names == (
        "age",
        "age_missing",
        "sex=female",
        "sex=male",
        "sex=unknown",
        "localization=back",
        "localization=face",
        "localization=lower extremity",
        "localization=unknown",
    )
    age = encoding.columns[0]
    assert age.mean == pytest.approx(50.0) and age.std == pytest.approx(np.std([30, 50, 70]))
    assert encoding.n_fitted == 6


def test_known_values_one_hot_and_standardised_age(encoding):
    feats, notes = encoding.encode_row({"age": "70", "sex": "Male", "localization": "FACE"})
    expected = [(70 - 50) / np.std([30, 50, 70]), 0, 0, 1, 0, 0, 1, 0, 0]
    np.testing.assert_allclose(feats, expected, rtol=1e-6)
    assert notes == []


def test_missing_values_follow_the_documented_rule(encoding):
    for empty in ("", "  ", "unknown", "NA", None, float("nan")):
        feats, notes = encoding.encode_row({"age": empty, "sex": empty, "localization": empty})
        np.testing.assert_array_equal(feats, [0, 1, 0, 0, 1, 0, 0, 0, 1])
        assert len(notes) == 3 and "age unknown" in notes
    # an absent key counts as missing
    feats, _ = encoding.encode_row({})
    np.testing.assert_array_equal(feats, [0, 1, 0, 0, 1, 0, 0, 0, 1])


def test_unseen_site_is_unknown_with_a_note_but_unseen_sex_is_an_error(encoding):
    feats, notes = encoding.encode_row({"age": 40, "sex": "female", "localization": "scalp"})
    assert feats[-1] == 1 and feats[5:8].sum() == 0
    assert notes == ["localization 'scalp' not seen in training: treated as unknown"]
    with pytest.raises(MetadataValueError) as info:
        encoding.encode_row({"age": 40, "sex": "femal", "localization": "back"})
    assert info.value.column == "sex" and "'femal'" in str(info.value)
    assert "['female', 'male']" in str(info.value)


@pytest.mark.parametrize("bad", ["abc", "45y", 150, -1, "121", float("inf"), True])
def test_bad_ages_are_errors_naming_the_column(encoding, bad):
    with pytest.raises(MetadataValueError) as info:
        encoding.encode_row({"age": bad, "sex": "male", "localization": "back"})
    assert info.value.column == "age"
    assert "[0, 120]" in str(info.value)


def test_encode_rows_collects_every_error_and_keeps_rows_aligned(encoding):
    rows = [
        {"age": 20, "sex": "male", "localization": "back"},
        {"age": "abc", "sex": "male", "localization": "back"},
        {"age": 30, "sex": "x", "localization": "mars"},
        {"age": "", "sex": "female", "localization": "face"},
    ]
    out = encoding.encode_rows(rows)
    assert out.features.shape == (4, encoding.n_features)
    assert [(i, e.column) for i, e in out.errors] == [(1, "age"), (2, "sex")]
    located = out.errors[0][1].located(file="m.csv", row=3)
    assert "file 'm.csv', row 3, column 'age'" in str(located)
    assert out.unknown.tolist() == [
        [False, False, False],
        [False, False, False],
        [False, False, True],
        [True, False, False],
    ]
    np.testing.assert_array_equal(out.features[3, :2], [0, 1])


def test_round_trip_through_json_encodes_identically(encoding):
    doc = json.loads(json.dumps(encoding.to_dict()))
    assert doc["input"] == "metadata" and doc["columns"] == ["age", "sex", "localization"]
    assert doc["feature_names"] == list(encoding.feature_names)
    assert {d["column"]: d["missing"] for d in doc["encoding"]}["age"].startswith("age = 0")
    back = MetadataEncoding.from_dict(doc)
    assert back == encoding
    row = {"age": 33, "sex": "female", "localization": "back"}
    np.testing.assert_array_equal(back.encode_row(row)[0], encoding.encode_row(row)[0])


def test_from_dict_refuses_other_formats_and_tampered_documents(encoding):
    doc = encoding.to_dict()
    with pytest.raises(ModelFileError, match="format"):
        MetadataEncoding.from_dict({**doc, "format": 99})
    with pytest.raises(ModelFileError, match="feature names"):
        MetadataEncoding.from_dict({**doc, "feature_names": doc["feature_names"][::-1]})
    with pytest.raises(ModelFileError, match="malformed"):
        MetadataEncoding.from_dict({**doc, "encoding": [{"kind": "numeric"}]})


def test_sex_has_a_closed_vocabulary_even_when_training_data_has_a_typo():
    enc = fit_metadata_encoding(["sex"], {"sex": ["male", "femal", "female"]})
    assert enc.feature_names == ("sex=female", "sex=male", "sex=unknown")
    out = enc.encode_rows([{"sex": "femal"}, {"sex": "MALE"}])
    assert [(i, e.column) for i, e in out.errors] == [(0, "sex")]
    # an open vocabulary learns its categories from the training split
    enc = fit_metadata_encoding(["localization"], {"localization": ["Back", "scalp"]})
    assert enc.feature_names == ("localization=back", "localization=scalp", "localization=unknown")


def test_misspelled_or_empty_columns_are_config_errors():
    with pytest.raises(ConfigError) as info:
        fit_metadata_encoding(
            ["age", "localisation"], TRAIN, source="ham", available=["image", *TRAIN]
        )
    msg = str(info.value)
    assert "['localisation']" in msg and "'localization'" in msg and "data.metadata_columns" in msg
    with pytest.raises(ConfigError, match="no usable value"):
        fit_metadata_encoding(["age"], {"age": [None, "unknown", math.nan]})
    with pytest.raises(ConfigError, match="more than once"):
        fit_metadata_encoding(["sex", "sex"], TRAIN)


def test_describe_says_what_each_column_accepts(encoding):
    text = encoding.describe()
    assert "age: number of years in [0, 120]; empty = unknown" in text
    assert "sex: one of female, male (any case); empty = unknown; other values are an error" in text
    assert "other values are treated as unknown" in text.splitlines()[2]


def test_column_slices_give_each_columns_missing_encoding(encoding):
    blocks = encoding.column_slices()
    missing = np.concatenate([m for _, m in blocks])
    np.testing.assert_array_equal(missing, encoding.encode_row({})[0])
    assert [b.stop - b.start for b, _ in blocks] == [2, 3, 4]
