"""Bad inputs become rows with a reason; bad model files are refused with what they miss."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinml.errors import DataError, ModelFileError
from skinml.modelfile import METADATA_KEY
from skinml.predict import ImagePredictor, expand_inputs, run_predictions
from skinml.predict.cli import main

from .conftest import lesion_image, tiny_graph, tiny_metadata, write_tiny_model


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def bad_inputs(tmp_path) -> tuple[Path, dict[str, str]]:
    """A CSV listing one file of every awkward kind; returns (csv, name -> expected status)."""
    d = tmp_path / "awkward"
    d.mkdir()
    good = lesion_image(0)
    good.save(d / "good.jpg")
    buf = io.BytesIO()
    good.save(buf, format="JPEG")
    data = buf.getvalue()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "corrupt.jpg").write_bytes(data[:20] + bytes(range(256)) * 8)
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("this is a clinic note, not an image")
    good.convert("CMYK").save(d / "cmyk.jpg")
    arr16 = (np.linspace(0, 65535, 60 * 45).reshape(45, 60)).astype(np.uint16)
    sixteen = Image.frombytes("I;16", (60, 45), arr16.tobytes())
    assert sixteen.mode == "I;16"
    sixteen.save(d / "sixteen.png")
    good.convert("L").save(d / "grey.png")
    rgba = good.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "rgba.png")
    Image.new("1", (12_000, 9_000)).save(d / "bomb.png")  # 108 MP of zeros, a tiny file
    expected = {
        "good.jpg": "ok",
        "truncated.jpg": "error",
        "corrupt.jpg": "error",
        "empty.jpg": "error",
        "text.jpg": "error",
        "cmyk.jpg": "ok",
        "sixteen.png": "ok",
        "grey.png": "ok",
        "rgba.png": "ok",
        "bomb.png": "error",
        "missing.jpg": "error",
        "": "error",
    }
    listing = tmp_path / "worklist.csv"
    with open(listing, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient", "image"])
        for i, name in enumerate(expected):
            w.writerow([f"P{i}", f"awkward/{name}" if name else ""])
    return listing, expected


def test_every_awkward_input_gets_exactly_one_row(tiny_model, bad_inputs, tmp_path):
    listing, expected = bad_inputs
    # Pillow warns about the 108 MP header; skinml's own limit (100 MP) then refuses it.
    with pytest.warns(Image.DecompressionBombWarning):
        out = run_predictions(tiny_model, listing, tmp_path / "p.csv", batch_size=3, progress=False)
    rows = rows_of(out)
    assert len(rows) == len(expected)
    reasons = {}
    for row, (name, status) in zip(rows, expected.items(), strict=True):
        assert row["input"] == (f"awkward/{name}" if name else "")
        assert row["status"] == status, (name, row["error"])
        if status == "ok":
            assert row["error"] == "" and row["predicted_class"]
            assert sum(float(row[f"p_{c}"]) for c in ("nv", "mel", "bkl")) == pytest.approx(1, 1e-5)
        else:
            assert row["error"] and row["predicted_class"] == "" and row["p_nv"] == ""
            reasons[name] = row["error"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]
    assert "corrupt" in reasons["corrupt.jpg"] or "not a recognised" in reasons["corrupt.jpg"]
    assert "0 bytes" in reasons["empty.jpg"]
    assert "not a recognised image format" in reasons["text.jpg"]
    assert "decompression" in reasons["bomb.png"]
    assert "does not exist" in reasons["missing.jpg"]
    assert "CSV row 13" in reasons[""] and "empty 'image' cell" in reasons[""]
    # odd modes were converted: greyscale stays grey after RGB conversion
    grey = next(r for r in rows if r["input"].endswith("grey.png"))
    assert grey["status"] == "ok"


def test_folder_scan_reports_skipped_files(image_folder):
    expanded = expand_inputs(image_folder)
    assert len(expanded.items) == 6
    assert [p.name for p in expanded.skipped] == ["notes.txt"]


def test_csv_without_image_column_is_refused(tmp_path, tiny_model):
    listing = tmp_path / "list.csv"
    listing.write_text("patient,photo\nP1,a.jpg\n")
    with pytest.raises(DataError, match=r"found columns \['patient', 'photo'\]"):
        run_predictions(tiny_model, listing, tmp_path / "p.csv", progress=False)


def test_missing_input_is_refused(tiny_model, tmp_path):
    with pytest.raises(DataError, match="input does not exist"):
        run_predictions(tiny_model, tmp_path / "nowhere", tmp_path / "p.csv", progress=False)


def test_model_without_skinml_metadata_is_refused(tmp_path):
    import onnx

    plain = tmp_path / "plain.onnx"
    onnx.save_model(tiny_graph(), str(plain))
    with pytest.raises(ModelFileError, match="carries no skinml metadata"):
        ImagePredictor(plain)


def test_wrong_checksum_is_refused(tmp_path):
    model = write_tiny_model(tmp_path / "m.onnx")
    side = model.with_name("m.onnx.sha256")
    side.write_text("0" * 64 + "  m.onnx\n")
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        ImagePredictor(model)


def test_unsupported_schema_version_is_refused(tmp_path):
    import onnx

    model = write_tiny_model(tmp_path / "m.onnx", sidecar=False)
    proto = onnx.load(str(model))
    prop = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    doc = json.loads(prop.value)
    doc["schema_version"] = "9.0"
    prop.value = json.dumps(doc)
    onnx.save_model(proto, str(model))
    with pytest.raises(ModelFileError, match=r"unsupported skinml metadata schema version '9\.0'"):
        ImagePredictor(model)


def test_not_an_onnx_file_is_refused(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        ImagePredictor(fake)


def test_cli_reports_model_errors_with_exit_code_2(tmp_path, image_folder, capsys):
    model = write_tiny_model(tmp_path / "m.onnx")
    model.with_name("m.onnx.sha256").write_text("f" * 64 + "  m.onnx\n")
    code = main([str(model), str(image_folder), "-o", str(tmp_path / "p.csv"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "checksum mismatch" in err and "do not use this copy" in err
    assert not (tmp_path / "p.csv").exists()


def test_cli_dispatches_tabular_models_and_explains_a_missing_module(
    tmp_path, image_folder, capsys, monkeypatch
):
    import sys

    meta = tiny_metadata(
        task="tabular_risk",
        preprocessing=None,
        classes=("no", "yes"),
        malignant=("yes",),
        thresholds=(),
    )
    model = write_tiny_model(tmp_path / "risk.onnx", meta)
    monkeypatch.setitem(sys.modules, "skinml.predict.tabular", None)  # import -> ImportError
    code = main([str(model), str(image_folder), "-o", str(tmp_path / "r.csv"), "--no-progress"])
    assert code == 2
    assert "cannot run tabular risk models" in capsys.readouterr().err

    calls = {}

    class FakeTabular:
        @staticmethod
        def run_tabular_predictions(model_path, metadata, session, input_path, output_csv, **kw):
            calls.update(
                task=metadata.task,
                input=input_path,
                kw=kw,
                outputs=[o.name for o in session.get_outputs()],
            )
            Path(output_csv).write_text("sample_id,risk\n")
            return Path(output_csv)

    monkeypatch.setitem(sys.modules, "skinml.predict.tabular", FakeTabular)
    code = main([str(model), str(tmp_path), "-o", str(tmp_path / "r.csv"), "--no-progress"])
    assert code == 0
    assert calls["task"] == "tabular_risk" and calls["input"] == tmp_path
    assert "probabilities" in calls["outputs"] and calls["kw"]["progress"] is False


def test_cli_writes_csv_and_says_where(tiny_model, image_folder, tmp_path, capsys):
    out = tmp_path / "nested" / "p.csv"
    code = main(
        [
            str(tiny_model),
            str(image_folder),
            "-o",
            str(out),
            "--no-progress",
            "--batch-size",
            "4",
            "--heatmaps",
            str(tmp_path / "h"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert f"wrote 6 rows to {out} (6 ok, 0 errors)" in printed
    assert "skipped 1 files without an image suffix" in printed
    assert len(rows_of(out)) == 6 and len(list((tmp_path / "h").glob("*.png"))) == 6
