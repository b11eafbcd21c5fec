"""The quiz file: self-contained, offline, and free of the instructor's key."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinml.cli.teach import main
from skinml.errors import ConfigError
from skinml.teach.answer_columns import QUIZ_COLUMNS
from skinml.teach.build import build_teaching_set
from skinml.teach.quiz import write_quiz


def quiz_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="quiz-data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def test_build_writes_both_quizzes_and_records_them(ai_quiz_set) -> None:
    ts, _, _ = ai_quiz_set
    assert ts.quiz is not None and ts.quiz_ai_support is not None
    card = json.loads((ts.folder / "teaching_set.json").read_text())
    assert card["quizzes"]["plain"]["file"] == "quiz.html"
    assert card["quizzes"]["ai_support"]["heatmaps"] == "CAM heatmaps from tiny.onnx"
    assert re.fullmatch(r"[0-9a-f]{16}", card["fingerprint"])
    plain = quiz_data(ts.quiz)
    assert plain["mode"] == "plain" and plain["fingerprint"] == card["fingerprint"]
    assert plain["columns"] == list(QUIZ_COLUMNS)
    assert [c["code"] for c in plain["classes"]] == card["classes"]
    assert [c["id"] for c in plain["cases"]] == ts.reference["case"].tolist()


def test_quiz_is_self_contained_offline(ai_quiz_set) -> None:
    ts, _, _ = ai_quiz_set
    for quiz in (ts.quiz, ts.quiz_ai_support):
        text = quiz.read_text(encoding="utf-8")
        # no fetch, no external script, style, image or link: it opens on a ward PC offline
        assert not re.search(r'(src|href)="(?!data:)', text)
        assert "http://" not in text and "https://" not in text and "fetch(" not in text
        for case in quiz_data(quiz)["cases"]:
            head, b64 = case["image"].split(",", 1)
            assert head == "data:image/jpeg;base64"
            with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
                assert img.size == (60, 45) and len(img.getexif()) == 0


def test_key_is_never_in_the_quiz(ai_quiz_set, tmp_path: Path) -> None:
    ts, _, manifest = ai_quiz_set
    ref = ts.reference
    for quiz in (ts.quiz, ts.quiz_ai_support):
        text = quiz.read_text(encoding="utf-8")
        for source in manifest.frame["image"]:  # every candidate, not only the chosen ones
            assert Path(source).name not in text and Path(source).stem not in text
        for lesion in manifest.frame["lesion_id"]:
            assert lesion not in text
        for word in ("source_image", "lesion_id", "difficulty", "ai_p_reference"):
            assert word not in text
        for case, label in zip(ref["case"], ref["diagnosis"], strict=True):
            record = next(c for c in quiz_data(quiz)["cases"] if c["id"] == case)
            assert set(record) <= {"id", "image", "ai"}
            without_ai = json.dumps({k: v for k, v in record.items() if k != "ai"})
            assert label not in without_ai.replace(record["image"], "")
    # the quiz depends on the images, the vocabulary and the AI only: the same bytes for any key
    copy = tmp_path / "set"
    shutil.copytree(ts.folder, copy)
    shuffled = ref.assign(diagnosis=np.roll(ref["diagnosis"].to_numpy(), 1), malignant=True)
    shuffled.to_csv(copy / "reference.csv", index=False)
    assert write_quiz(copy).read_bytes() == ts.quiz.read_bytes()
    (copy / "reference.csv").unlink()
    assert write_quiz(copy).read_bytes() == ts.quiz.read_bytes()


def test_ai_support_quiz_carries_probabilities_and_heatmaps(ai_quiz_set) -> None:
    ts, _, _ = ai_quiz_set
    ai = pd.read_csv(ts.ai_answers).set_index("case")
    data = quiz_data(ts.quiz_ai_support)
    assert data["mode"] == "ai_support"
    for case in data["cases"]:
        shown = case["ai"]
        assert set(shown) == {"probabilities", "malignant_probability", "heatmap"}
        probs = shown["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert max(probs, key=probs.get) == ai.loc[case["id"], "diagnosis"]  # what is scored
        assert shown["malignant_probability"] == pytest.approx(
            ai.loc[case["id"], "malignant_probability"], abs=1e-4
        )
        head, b64 = shown["heatmap"].split(",", 1)
        assert head == "data:image/png;base64"
        with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
            arr = np.asarray(img.convert("RGB"), dtype=float)
            assert arr.std() > 5  # a coloured overlay, not a blank image
    plain = quiz_data(ts.quiz)  # the plain quiz holds nothing of the AI
    assert all(set(c) == {"id", "image"} for c in plain["cases"])
    assert "probabilities" not in json.dumps(plain)


def test_ai_quiz_needs_ai_answers(tiny_manifest, tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match="AI-support quiz needs the AI's answers"):
        build_teaching_set(tiny_manifest, tmp_path / "a", 7, quiz="ai_support", progress=False)
    ts = build_teaching_set(tiny_manifest, tmp_path / "b", 7, progress=False)
    assert ts.quiz is not None and ts.quiz_ai_support is None  # auto without an AI: plain only
    assert main(["quiz", str(ts.folder), "--ai-support"]) == 2
    assert "ai_answers.csv" in capsys.readouterr().err
    none = build_teaching_set(tiny_manifest, tmp_path / "c", 7, quiz="none", progress=False)
    assert none.quiz is None


def test_quiz_command_rewrites_with_title(ai_quiz_set, tmp_path: Path, capsys) -> None:
    ts, model, _ = ai_quiz_set
    copy = tmp_path / "set"
    shutil.copytree(ts.folder, copy)
    (copy / "quiz_ai_support.html").unlink()
    rc = main(["quiz", str(copy), "--ai-support", "--model", str(model), "--title", "Ward 3"])
    assert rc == 0 and "quiz_ai_support.html" in capsys.readouterr().out
    data = quiz_data(copy / "quiz_ai_support.html")
    assert data["title"] == "Ward 3" and all("heatmap" in c["ai"] for c in data["cases"])
    # without the model the AI step shows probabilities only (the page says so)
    write_quiz(copy, ai_support=True)
    assert all("heatmap" not in c["ai"] for c in quiz_data(copy / "quiz_ai_support.html")["cases"])


def test_quiz_fits_a_laptop_screen_in_chromium(ai_quiz_set, fits_laptop_screen) -> None:
    ts, _, _ = ai_quiz_set
    for quiz in (ts.quiz, ts.quiz_ai_support):
        fits_laptop_screen(quiz)
