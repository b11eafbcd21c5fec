"""skinml-predict with a metadata-fusion model: a CSV with metadata columns, one row per input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from skinml.errors import DataError, ModelFileError
from skinml.imaging.preprocess import preprocess
from skinml.imaging.read import read_image
from skinml.modelfile import read_metadata
from skinml.predict import ImagePredictor, output_columns, run_predictions
from skinml.predict.cli import main
from skinml.predict.scores import softmax

from .conftest import (
    CLASSES,
    TEMPERATURE,
    lesion_image,
    tiny_fusion_encoding,
    write_tiny_fusion_model,
)
from .test_light_install import BLOCKED, SITECUSTOMIZE


def write_cases(tmp_path: Path, rows: list[dict[str, str]], name: str = "cases.csv") -> Path:
    folder = tmp_path / "img"
    folder.mkdir(exist_ok=True)
    for i in range(3):
        lesion_image(i).save(folder / f"les_{i}.jpg", quality=92)
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def case(img: int, age="50", sex="female", site="back", **extra) -> dict[str, str]:
    return {"image": f"img/les_{img}.jpg", "age": age, "sex": sex, "localization": site, **extra}


def test_predictions_use_each_rows_metadata(tiny_fusion_model, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            case(0, "30", "male", "back"),
            case(0, "80", "Female", "LOWER_extremity"),  # same image, other patient
            case(1, "", "", ""),  # nothing known
        ],
    )
    out = run_predictions(tiny_fusion_model, cases, tmp_path / "p.csv", progress=False)
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert list(rows[0]) == output_columns(CLASSES, metadata=True)
    probs = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.abs(probs[0] - probs[1]).max() > 1e-3  # same image, different metadata
    assert rows[0]["metadata_notes"] == ""
    assert rows[2]["metadata_notes"] == "age unknown; sex unknown; localization unknown"

    # the reference: encode by hand with the stored rules and run onnxruntime directly
    enc = tiny_fusion_encoding()
    sess = ort.InferenceSession(str(tiny_fusion_model), providers=["CPUExecutionProvider"])
    prep = read_metadata(tiny_fusion_model, session=sess).preprocessing
    x = preprocess(read_image(tmp_path / "img/les_0.jpg"), prep)[None]
    m = enc.encode_row({"age": 80, "sex": "female", "localization": "lower extremity"})[0]
    want = sess.run(["probabilities"], {"image": x, "metadata": m[None]})[0][0]
    np.testing.assert_allclose(probs[1], want, atol=1e-6)


def test_bad_metadata_becomes_an_error_row_naming_column_and_row(tiny_fusion_model, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            case(0),
            case(1, age="abc"),
            case(2, age="150"),
            case(0, sex="femal"),
            case(1, site="elbow"),  # an unseen site: the documented unknown rule
            case(2, age=" 61 ", sex=" MALE "),
        ],
    )
    rows = read_rows(run_predictions(tiny_fusion_model, cases, tmp_path / "p.csv", progress=False))
    assert len(rows) == 6  # never dropped
    assert [r["status"] for r in rows] == ["ok", "error", "error", "error", "ok", "ok"]
    assert rows[1]["error"].startswith("CSV row 3, column 'age': 'abc' is not a number")
    assert "[0, 120]" in rows[1]["error"]
    assert rows[2]["error"].startswith("CSV row 4, column 'age': '150' is out of range")
    assert rows[3]["error"].startswith("CSV row 5, column 'sex': 'femal' is not a recognised")
    assert "['female', 'male']" in rows[3]["error"]
    assert rows[4]["metadata_notes"] == (
        "localization 'elbow' not seen in training: treated as unknown"
    )
    assert all(rows[i][f"p_{CLASSES[0]}"] == "" for i in (1, 2, 3))


def test_missing_or_misspelled_columns_are_refused_with_what_is_needed(tiny_fusion_model, tmp_path):
    rows = [{"image": "img/les_0.jpg", "Age": "40", "sex": "male", "localisation": "back"}]
    cases = write_cases(tmp_path, rows)
    with pytest.raises(DataError) as info:
        run_predictions(tiny_fusion_model, cases, tmp_path / "p.csv", progress=False)
    msg = str(info.value)
    assert "needs the metadata columns ['age', 'sex', 'localization']" in msg
    assert "missing ['localization']" in msg and "'localisation' for 'localization'?" in msg
    assert not (tmp_path / "p.csv").exists()


def test_a_folder_is_refused_for_a_metadata_model(tiny_fusion_model, image_folder, tmp_path):
    with pytest.raises(DataError, match=r"must be a CSV file.*'age', 'sex', 'localization'"):
        run_predictions(tiny_fusion_model, image_folder, tmp_path / "p.csv", progress=False)


def test_tta_flips_the_image_and_keeps_the_metadata(tiny_fusion_model, tmp_path):
    enc = tiny_fusion_encoding()
    img = tmp_path / "one.png"
    lesion_image(7).save(img)
    meta = {"age": "45", "sex": "male", "localization": "face"}
    tta = ImagePredictor(tiny_fusion_model, tta=True, workers=0)
    row = tta.predict_paths([img], metadata=[meta])[0]
    sess = tta.session
    x = preprocess(read_image(img), tta.metadata.preprocessing)[None]
    m = enc.encode_row(meta)[0][None]
    views = [x, x[..., ::-1], x[..., ::-1, :], x[..., ::-1, ::-1]]
    logits = np.mean(
        [sess.run(["logits"], {"image": np.ascontiguousarray(v), "metadata": m})[0] for v in views],
        axis=0,
    )
    want = softmax(logits, TEMPERATURE)[0]
    np.testing.assert_allclose([row[f"p_{c}"] for c in CLASSES], want, atol=1e-6)


def test_heatmaps_work_with_metadata(tiny_fusion_model, tmp_path):
    cases = write_cases(tmp_path, [case(0), case(1, site="")])
    out = run_predictions(
        tiny_fusion_model, cases, tmp_path / "p.csv", heatmap_dir=tmp_path / "h", progress=False
    )
    rows = read_rows(out)
    assert all(r["status"] == "ok" and Path(r["heatmap"]).is_file() for r in rows)


def test_a_model_without_metadata_keeps_its_columns_and_inputs(tiny_model, image_folder):
    pred = ImagePredictor(tiny_model)
    assert pred.metadata_columns == ()
    assert pred.columns == output_columns(CLASSES) and "metadata_notes" not in pred.columns
    rows = pred.predict_paths(sorted(image_folder.glob("*.jpg")))
    assert {r["status"] for r in rows} == {"ok"}


def test_a_metadata_input_without_its_encoding_is_refused(tmp_path):
    path = write_tiny_fusion_model(tmp_path / "broken.onnx", with_encoding=False)
    with pytest.raises(ModelFileError, match=r"graph inputs \['metadata'\] are not documented"):
        ImagePredictor(path)


def test_cli_describe_lists_the_columns_and_values(tiny_fusion_model, capsys):
    assert main([str(tiny_fusion_model), "--describe"]) == 0
    out = capsys.readouterr().out
    assert "INPUT: a CSV with the columns image,age,sex,localization" in out
    assert "age: number of years in [0, 120]; empty = unknown" in out
    assert "sex: one of female, male (any case); empty = unknown; other values are an error" in out


def test_cli_help_says_metadata_models_need_a_csv(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--describe" in out and "image,age,sex,localization" in out


def test_cli_folder_input_is_a_usage_error_naming_the_columns(
    tiny_fusion_model, image_folder, tmp_path, capsys
):
    code = main([str(tiny_fusion_model), str(image_folder), "-o", str(tmp_path / "p.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert "['image', 'age', 'sex', 'localization']" in err and "--describe" in err


def test_metadata_prediction_runs_without_heavy_packages(tiny_fusion_model, tmp_path):
    cases = write_cases(tmp_path, [case(0), case(1, age="x")])
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    check = (
        "import sys\nfrom skinml.predict.cli import main\ncode = main(sys.argv[1:])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r})\n"
        "print('HEAVY_MODULES', heavy)\n"
        "try:\n    import torch\nexcept ImportError:\n    print('TORCH_BLOCKED')\n"
        "raise SystemExit(code)\n"
    )
    out = tmp_path / "p.csv"
    proc = subprocess.run(
        [sys.executable, "-c", check, str(tiny_fusion_model), str(cases), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY_MODULES []" in proc.stdout and "TORCH_BLOCKED" in proc.stdout
    assert [r["status"] for r in read_rows(out)] == ["ok", "error"]
