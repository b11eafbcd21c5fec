"""Building teaching sets: selection, anonymisation, determinism, AI answers, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinml.errors import ConfigError, DataError
from skinml.teach.build import allocate, build_teaching_set
from skinml.teach.simulate import simulate_predictions

HAM = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def test_allocate_balanced_and_proportional() -> None:
    avail = {"nv": 100, "mel": 10, "df": 2, "vasc": 3}
    bal = allocate(avail, 20, "balanced")
    assert sum(bal.values()) == 20
    assert bal["df"] == 2 and bal["vasc"] == 3  # rare ones capped, the rest shared out
    assert bal["nv"] + bal["mel"] == 15 and abs(bal["nv"] - bal["mel"]) <= 1
    prop = allocate(avail, 23, "proportional")
    assert sum(prop.values()) == 23 and prop["nv"] == 20
    with pytest.raises(DataError, match="only 115 distinct lesions"):
        allocate(avail, 200)


def test_build_writes_anonymised_set(tiny_manifest, tmp_path: Path) -> None:
    ts = build_teaching_set(tiny_manifest, tmp_path / "set", 14, seed=3, progress=False)
    ref = pd.read_csv(ts.reference_csv)
    assert ref.columns[:4].tolist() == ["case", "diagnosis", "malignant", "source_image"]
    assert ref["case"].tolist() == [f"case_{i:03d}" for i in range(1, 15)]
    assert ref["diagnosis"].value_counts().to_dict() == dict.fromkeys(HAM, 2)
    assert set(ref.loc[ref["malignant"], "diagnosis"]) == {"mel", "bcc", "akiec"}
    assert ref["lesion_id"].is_unique  # never two photos of one lesion
    assert (ref["difficulty"] == "unknown").all()  # no AI given
    sheet = pd.read_csv(ts.answer_sheet, keep_default_na=False)
    assert sheet.columns.tolist() == ["case", "diagnosis", "confidence"]
    assert (sheet["diagnosis"] == "").all() and ts.ai_answers is None
    for case in ref["case"]:
        with Image.open(ts.folder / "cases" / f"{case}.jpg") as img:
            assert len(img.getexif()) == 0 and "exif" not in img.info
    raw = (ts.folder / "cases" / "case_001.jpg").read_bytes()
    assert b"SecretCam" not in raw
    card = json.loads((ts.folder / "teaching_set.json").read_text())
    assert card["classes"] == list(HAM) and card["seed"] == 3
    assert len((ts.folder / "SHA256SUMS").read_text().splitlines()) == 14


def test_same_seed_same_set_other_seed_differs(tiny_manifest, tmp_path: Path) -> None:
    a = build_teaching_set(tiny_manifest, tmp_path / "a", 10, seed=5, progress=False)
    b = build_teaching_set(tiny_manifest, tmp_path / "b", 10, seed=5, progress=False)
    c = build_teaching_set(tiny_manifest, tmp_path / "c", 10, seed=6, progress=False)
    assert a.reference.equals(b.reference)
    assert (a.folder / "SHA256SUMS").read_text() == (b.folder / "SHA256SUMS").read_text()
    assert not a.reference["source_image"].equals(c.reference["source_image"])


def test_hard_fraction_uses_ai_confidence(tiny_manifest, tmp_path: Path) -> None:
    images = [str(tiny_manifest.root / p) for p in tiny_manifest.frame["image"]]
    preds = simulate_predictions(images, tiny_manifest.frame["label"], HAM, accuracy=0.5, seed=1)
    pred_csv = tmp_path / "predictions_simulated.csv"
    preds.to_csv(pred_csv, index=False)
    ts = build_teaching_set(
        tiny_manifest,
        tmp_path / "set",
        14,
        seed=0,
        hard_fraction=0.5,
        ai_predictions=pred_csv,
        progress=False,
    )
    ref = ts.reference
    assert set(ref["difficulty"]) <= {"easy", "hard"}
    assert ((ref["ai_p_reference"] < 0.5) == (ref["difficulty"] == "hard")).all()
    ai = pd.read_csv(ts.ai_answers)
    assert ai["case"].tolist() == ref["case"].tolist()
    assert {f"p_{c}" for c in HAM} <= set(ai.columns)
    # the AI answers are the predictions of exactly the chosen source images
    by_file = preds.set_index("file")
    for case_row, ai_row in zip(ref.itertuples(), ai.itertuples(), strict=True):
        src = str(tiny_manifest.root / case_row.source_image)
        assert ai_row.diagnosis == by_file.loc[src, "predicted_class"]
    easy = build_teaching_set(
        tiny_manifest,
        tmp_path / "easy",
        14,
        seed=0,
        hard_fraction=0.0,
        ai_predictions=pred_csv,
        progress=False,
    )
    n_hard_pool = int((easy.reference["difficulty"] == "hard").sum())
    assert n_hard_pool < int((ref["difficulty"] == "hard").sum())


def test_unreadable_image_is_replaced_and_recorded(tiny_manifest, tmp_path: Path) -> None:
    for j in range(5):
        (tiny_manifest.root / f"img/df_{j}.jpg").write_bytes(b"")  # all df images broken but one
    Image.new("RGB", (20, 20), "red").save(tiny_manifest.root / "img/df_0.jpg")
    ts = build_teaching_set(tiny_manifest, tmp_path / "set", 7, seed=0, progress=False)
    assert (ts.reference["diagnosis"] == "df").sum() == 1
    assert ts.reference.loc[ts.reference["diagnosis"] == "df", "source_image"].item() == (
        "img/df_0.jpg"
    )
    with pytest.raises(DataError, match="only 1 readable images for diagnosis 'df', 2 needed"):
        build_teaching_set(tiny_manifest, tmp_path / "set2", 14, seed=0, progress=False)


def test_bad_options(tiny_manifest, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--malignant names \['psoriasis'\]"):
        build_teaching_set(
            tiny_manifest, tmp_path / "a", 7, malignant=["psoriasis"], progress=False
        )
    # a synonym of a class is that class (this was refused before the shared vocabulary)
    ts = build_teaching_set(
        tiny_manifest, tmp_path / "a2", 7, malignant=["Melanoma"], progress=False
    )
    assert ts.card["malignant_classes"] == ["mel"]
    with pytest.raises(ConfigError, match="outside"):
        build_teaching_set(tiny_manifest, tmp_path / "b", 7, hard_fraction=1.5, progress=False)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        build_teaching_set(tiny_manifest, tmp_path / "c", 7, progress=False)


def test_reference_class_unknown_to_model_is_refused(tiny_manifest, tmp_path: Path) -> None:
    images = [str(tiny_manifest.root / p) for p in tiny_manifest.frame["image"]]
    six = [c for c in HAM if c != "vasc"]
    labels = ["nv" if lab == "vasc" else lab for lab in tiny_manifest.frame["label"]]
    preds = simulate_predictions(images, labels, six, seed=0)
    pred_csv = tmp_path / "predictions_simulated.csv"
    preds.to_csv(pred_csv, index=False)
    with pytest.raises(DataError, match=r"diagnoses \['vasc'\] that the AI model does not know"):
        build_teaching_set(
            tiny_manifest, tmp_path / "set", 7, ai_predictions=pred_csv, progress=False
        )


def test_predictions_with_error_rows_and_missing_images(tiny_manifest, tmp_path: Path) -> None:
    images = [str(tiny_manifest.root / p) for p in tiny_manifest.frame["image"]]
    preds = simulate_predictions(images, tiny_manifest.frame["label"], HAM, seed=0)
    preds.loc[0, ["status", "error", "predicted_class"]] = ["error", "corrupt image", ""]
    preds = preds.drop(index=1)
    pred_csv = tmp_path / "predictions_simulated.csv"
    preds.to_csv(pred_csv, index=False)
    ts = build_teaching_set(
        tiny_manifest, tmp_path / "set", 7, ai_predictions=pred_csv, progress=False
    )
    excluded = ts.card["excluded_candidates"]
    assert excluded["n"] >= 1
    assert all(e["reason"] == "no usable AI prediction" for e in excluded["first_20"])
    assert not set(ts.reference["source_image"]) & {e["image"] for e in excluded["first_20"]}
    assert np.isfinite(ts.reference["ai_p_reference"]).all()


def test_model_path_runs_predictor_and_uses_model_malignant(
    tiny_manifest, tmp_path: Path, monkeypatch
) -> None:
    """--model: skinml.predict.run_predictions is called lazily on the candidates only."""
    import skinml.modelfile
    import skinml.predict

    calls = {}

    class Meta:
        classes = HAM
        malignant = ("mel",)

    def fake_run(model_path, inputs, output_csv, batch_size=32, progress=True):
        calls["inputs"] = list(inputs)
        labels = [Path(p).stem.split("_")[0] for p in inputs]
        simulate_predictions(inputs, labels, HAM, seed=0).to_csv(output_csv, index=False)
        return Path(output_csv)

    monkeypatch.setattr(skinml.predict, "run_predictions", fake_run)
    monkeypatch.setattr(skinml.modelfile, "read_metadata", lambda path: Meta())
    ts = build_teaching_set(
        tiny_manifest,
        tmp_path / "set",
        7,
        model=tmp_path / "m.onnx",
        progress=False,
        quiz="plain",  # the AI-support quiz runs the (here fake) model for heatmaps
    )
    assert len(calls["inputs"]) == 35  # one image per lesion (the duplicate photo is skipped)
    assert set(ts.reference.loc[ts.reference["malignant"], "diagnosis"]) <= {"mel"}
    assert ts.card["malignant_classes"] == ["mel"]
    assert ts.ai_answers is not None


def test_manifest_synonyms_are_put_in_the_model_terms(tiny_manifest, tmp_path: Path) -> None:
    """A manifest spelling diagnoses its own way, a HAM10000 model: one set of codes results."""
    from skinml.data.manifest import Manifest
    from skinml.teach.ai_answers import read_ai_answers
    from skinml.teach.reference import read_reference

    written = {"mel": "Melanoma", "nv": "naevus", "bkl": "seborrhoeic keratosis"}
    frame = tiny_manifest.frame.assign(label=tiny_manifest.frame["label"].replace(written))
    manifest = Manifest(frame, tiny_manifest.root, "own_spelling")
    images = [str(manifest.root / p) for p in frame["image"]]
    preds = simulate_predictions(images, tiny_manifest.frame["label"], HAM, seed=0)
    pred_csv = tmp_path / "predictions_simulated.csv"
    preds.to_csv(pred_csv, index=False)
    ts = build_teaching_set(manifest, tmp_path / "set", 14, ai_predictions=pred_csv, progress=False)
    assert set(ts.reference["diagnosis"]) == set(HAM)
    assert ts.card["classes"] == sorted(HAM)
    assert set(ts.reference.loc[ts.reference["malignant"], "diagnosis"]) == {"mel", "bcc", "akiec"}
    ref = read_reference(ts.folder / "reference.csv")
    ai = read_ai_answers(ts.ai_answers, ref)
    assert np.isfinite(ai.p_reference).all()
