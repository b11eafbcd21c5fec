"""The predictor: one row per input, calibrated probabilities, flags, TTA and heatmaps."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from skinml.imaging.preprocess import preprocess
from skinml.imaging.read import read_image
from skinml.modelfile import read_metadata
from skinml.predict import ImagePredictor, output_columns, run_predictions
from skinml.predict.scores import energy_score, softmax

from .conftest import CLASSES, TEMPERATURE, lesion_image


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def direct_outputs(model: Path, image_path: Path) -> dict[str, np.ndarray]:
    """Reference: decode + preprocess + onnxruntime by hand."""
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    prep = read_metadata(model, session=sess).preprocessing
    x = preprocess(read_image(image_path), prep)[None]
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"image": x}), strict=True))


def test_folder_gives_one_calibrated_row_per_image(tiny_model, image_folder, tmp_path):
    out = run_predictions(
        tiny_model, image_folder, tmp_path / "p.csv", batch_size=4, progress=False
    )
    rows = read_rows(out)
    assert list(rows[0]) == output_columns(CLASSES)
    assert [r["input"] for r in rows] == [f"img_{i}.jpg" for i in range(4)] + [
        "sub/img_4.png",
        "sub/img_5.png",
    ]
    for r in rows:
        assert r["status"] == "ok" and r["error"] == ""
        p = np.array([float(r[f"p_{c}"]) for c in CLASSES])
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
        assert r["predicted_class"] == CLASSES[int(p.argmax())]
        ref = direct_outputs(tiny_model, Path(r["file"]))
        np.testing.assert_allclose(p, ref["probabilities"][0], atol=2e-6)
        # the graph applies the temperature: probabilities == softmax(logits / T)
        np.testing.assert_allclose(p, softmax(ref["logits"], TEMPERATURE)[0], atol=2e-6)
        assert float(r["malignant_probability"]) == pytest.approx(float(r["p_mel"]), abs=1e-6)
        assert r["malignant_flag"] == str(int(float(r["p_mel"]) >= 0.3))
        energy = energy_score(ref["logits"])[0]
        assert float(r["ood_score"]) == pytest.approx(energy, abs=1e-5)
        assert r["ood_flag"] == str(int(energy > -1.0))
        assert r["heatmap"] == ""


def test_rows_do_not_depend_on_batching_or_threads(tiny_model, image_folder):
    paths = sorted(image_folder.rglob("*.jpg")) + sorted(image_folder.rglob("*.png"))
    a = ImagePredictor(tiny_model, workers=0).predict_paths(paths, batch_size=1)
    b = ImagePredictor(tiny_model, workers=3, threads=1).predict_paths(paths, batch_size=4)
    assert [r["input"] for r in a] == [str(p) for p in paths]
    for ra, rb in zip(a, b, strict=True):
        for c in CLASSES:
            assert ra[f"p_{c}"] == pytest.approx(rb[f"p_{c}"], abs=1e-6)


def test_tta_averages_the_four_flip_views_logits_before_the_temperature(tiny_model, tmp_path):
    """The tiny file records nothing about TTA: --tta averages logits, as training does."""
    path = tmp_path / "x.png"
    lesion_image(7, size=(50, 70)).save(path)
    pred = ImagePredictor(tiny_model, tta=True)
    assert pred.tta_plan.views == ("identity", "hflip", "vflip", "hflip_vflip")
    assert "does not record how its calibration was fitted" in pred.tta_plan.note
    row = pred.predict_paths([path])[0]
    sess = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    x = preprocess(read_image(path), read_metadata(tiny_model).preprocessing)[None]
    views = [x, x[..., ::-1], x[..., ::-1, :], x[..., ::-1, ::-1]]
    logits = np.mean([sess.run(["logits"], {"image": v.copy()})[0] for v in views], 0)
    expected = softmax(logits, TEMPERATURE)[0]
    got = np.array([row[f"p_{c}"] for c in CLASSES])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert row["ood_score"] == pytest.approx(energy_score(logits)[0], abs=1e-6)
    # averaging calibrated probabilities (what --tta did before) is a different number
    probs = np.mean([sess.run(["probabilities"], {"image": v.copy()})[0] for v in views], 0)
    assert not np.allclose(got, probs[0], atol=1e-6)
    plain = ImagePredictor(tiny_model).predict_paths([path])[0]
    assert not np.allclose(got, [plain[f"p_{c}"] for c in CLASSES], atol=1e-6)


def test_heatmaps_are_written_without_metadata(tiny_model, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}  # GPSInfo
    lesion_image(3, size=(120, 90)).save(src / "a.jpg", exif=exif.tobytes())
    assert Image.open(src / "a.jpg").getexif()
    heat = tmp_path / "heat"
    out = run_predictions(tiny_model, src, tmp_path / "p.csv", heatmap_dir=heat, progress=False)
    row = read_rows(out)[0]
    hp = Path(row["heatmap"])
    assert hp.parent == heat and hp.suffix == ".png" and hp.is_file()
    with Image.open(hp) as im:
        assert im.size == (120, 90)  # overlaid on the whole image (policy 'resize')
        assert not im.getexif() and "exif" not in im.info and "icc_profile" not in im.info
        assert np.asarray(im).std() > 0


def test_predictor_refuses_heatmaps_for_a_model_without_cam(tmp_path, image_folder):
    from skinml.errors import ModelFileError

    from .conftest import tiny_metadata, write_tiny_model

    meta = tiny_metadata(
        extra={"tensors": {"cam": None}, "cam": {"available": False, "reason": "ViT token outputs"}}
    )
    model = write_tiny_model(tmp_path / "nocam.onnx", meta)
    pred = ImagePredictor(model)
    assert not pred.has_cam
    with pytest.raises(ModelFileError, match="ViT token outputs"):
        pred.predict_paths([image_folder / "img_0.jpg"], heatmap_dir=tmp_path / "h")
    # without heatmaps it works, and the missing OOD threshold leaves ood_flag empty
    row = pred.predict_paths([image_folder / "img_0.jpg"])[0]
    assert row["status"] == "ok" and row["ood_flag"] == "" and row["ood_score"] != ""


def test_centre_crop_view_box_matches_preprocessing():
    from skinml.imaging.preprocess import resize_for_model
    from skinml.modelfile.metadata import Preprocessing
    from skinml.predict.heatmap import view_box

    prep = Preprocessing(
        input_size=(32, 32),
        mean=(0, 0, 0),
        std=(1, 1, 1),
        resize="resize_shorter_center_crop",
        crop_pct=0.8,
    )
    img = lesion_image(1, size=(200, 100))
    box = view_box(img.size, prep)
    assert box == (60, 10, 140, 90)  # shorter side 100 -> 40 px; 32/40 of it centred
    via_box = np.asarray(img.crop(box).resize((32, 32), Image.Resampling.BILINEAR), float)
    direct = np.asarray(resize_for_model(img, prep), float)
    assert np.abs(via_box - direct).mean() < 12  # same region (resampling differs slightly)
