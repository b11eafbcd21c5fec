"""Issue 15: every bad input of skinml-predict is one clear message (exit 2) or one error row."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from skinml.errors import ModelFileError
from skinml.modelfile import METADATA_KEY
from skinml.modelfile.metadata import ModelMetadata
from skinml.predict.cli import main

from .conftest import lesion_image, tiny_metadata, write_tiny_model


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "lesion.jpg"
    lesion_image(0).save(path)
    return path


def _fails(capsys, argv, *needles):
    assert main([*map(str, argv), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_latin1_csv_is_refused_naming_the_row(tiny_model, tmp_path, image, capsys):
    sheet = tmp_path / "worklist.csv"
    sheet.write_bytes("image,note\nlesion.jpg,ok\nlesion.jpg,caf\xe9\n".encode("latin-1"))
    _fails(capsys, [tiny_model, sheet, "-o", tmp_path / "o.csv"], "row 3", "UTF-8")


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_unusable_output_path_is_refused_before_scoring(tiny_model, tmp_path, image, capsys, where):
    out = tmp_path if where == "folder" else image / "out.csv"
    _fails(capsys, [tiny_model, image, "-o", out], str(out))


def test_model_deleted_but_sidecar_left(tiny_model, tmp_path, image, capsys):
    gone = tmp_path / "gone.onnx"
    shutil.copy(f"{tiny_model}.sha256", f"{gone}.sha256")
    _fails(capsys, [gone, image, "-o", tmp_path / "o.csv"], "does not exist", "gone.onnx")


def _doc() -> dict:
    return json.loads(tiny_metadata().to_json())


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: [1, 2], "JSON list"),
        (lambda d: "text", "JSON str"),
        (
            lambda d: {**d, "preprocessing": {**d["preprocessing"], "input_size": None}},
            "input_size",
        ),
        (lambda d: {k: v for k, v in d.items() if k != "preprocessing"}, "preprocessing"),
        (lambda d: {**d, "preprocessing": {"mean": [0.5]}}, "input_size"),
        (lambda d: {**d, "preprocessing": {**d["preprocessing"], "std": [0, 0, 0]}}, "std"),
        (lambda d: {**d, "classes": "nv"}, "classes"),
        (lambda d: {**d, "classes": []}, "classes"),
        (lambda d: {**d, "provenance": None}, "provenance"),
        (lambda d: {**d, "thresholds": [{"nope": 1}]}, "unexpected or missing"),
    ],
)
def test_malformed_metadata_is_a_model_file_error(mutate, needle):
    with pytest.raises(ModelFileError, match=needle):
        ModelMetadata.from_json(json.dumps(mutate(_doc())))


def test_metadata_list_through_the_command(tmp_path, image, capsys):
    import onnx

    path = write_tiny_model(tmp_path / "m.onnx", sidecar=False)
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = "[1, 2]"
    onnx.save(model, str(path))
    _fails(capsys, [path, image, "-o", tmp_path / "o.csv"], "JSON list", "m.onnx")


def test_fewer_class_names_than_outputs_is_refused(tmp_path, image, capsys):
    meta = tiny_metadata(classes=("nv", "mel"))
    path = write_tiny_model(tmp_path / "short.onnx", meta)
    _fails(capsys, [path, image, "-o", tmp_path / "o.csv"], "3 class scores", "2 classes")


def test_folder_named_like_an_image_gets_an_error_row(tiny_model, tmp_path, capsys):
    root = tmp_path / "photos"
    (root / "scan.jpg").mkdir(parents=True)
    lesion_image(1).save(root / "real.jpg")
    assert main([str(tiny_model), str(root), "-o", str(tmp_path / "o.csv"), "--no-progress"]) == 0
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as fh:
        rows = {r["input"]: r for r in csv.DictReader(fh)}
    assert rows["scan.jpg"]["status"] == "error"
    assert "folder" in rows["scan.jpg"]["error"]
    assert rows["real.jpg"]["status"] == "ok"
