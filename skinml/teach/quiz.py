"""The trainee's quiz: one self-contained HTML file that works offline.

``quiz.html`` (plain) or ``quiz_ai_support.html`` (two steps per case: the
trainee's own answer, then the AI's calibrated probabilities and heatmap and a
final answer) holds the case images as data URIs, the set's vocabulary and
fingerprint, and the page's own script (package data in ``quiz_assets/``). The
trainee's answers stay in the browser's localStorage, so closing it loses
nothing, and are exported as the long CSV ``skinml-teach score`` reads.

What goes in is chosen here and nowhere else: the pixels of ``cases/`` (already
anonymised by the build), the class list, the set's fingerprint and, in AI mode
only, the AI's probabilities per case and a heatmap drawn by the torch-free
predictor from the exported model. The key (``reference.csv``), the source
image names and the difficulty labels are never read.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import tempfile
from importlib import resources
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import ConfigError, DataError
from skinml.teach.ai_answers import PROB_PREFIX, read_predictions_like
from skinml.teach.answer_columns import AI_SUPPORT, PLAIN, QUIZ_COLUMNS
from skinml.teach.fingerprint import fingerprint_of_folder
from skinml.teach.reference import SET_CARD
from skinml.vocabulary import display_name

log = logging.getLogger(__name__)

QUIZ_FILES = {PLAIN: "quiz.html", AI_SUPPORT: "quiz_ai_support.html"}
#: Longest side of an embedded case image (HAM10000 images stay as they are).
IMAGE_MAX_SIDE = 900
_PLACEHOLDER = re.compile(r"\{\{(title|css|js|data)\}\}")


def _asset(name: str) -> str:
    return resources.files("skinml.teach").joinpath("quiz_assets", name).read_text("utf-8")


def _case_images(folder: Path) -> list[Path]:
    images = sorted((folder / "cases").glob("case_*.jpg"))
    if not images:
        raise DataError(
            "no case images (cases/case_*.jpg) in the teaching set",
            file=folder / "cases",
            fix="build the set with `skinml-teach build` first",
        )
    return images


def _image_uri(path: Path) -> str:
    from skinml.reporting.html import image_to_data_uri

    return image_to_data_uri(path, max_side=IMAGE_MAX_SIDE, quality=90)


def _ai_probabilities(folder: Path, cases: list[str]) -> dict[str, dict]:
    """Per case: the AI's probabilities per class and malignant probability (ai_answers.csv)."""
    path = folder / "ai_answers.csv"
    if not path.is_file():
        raise ConfigError(
            "an AI-support quiz needs the AI's answers, and this set has no ai_answers.csv",
            fix="build the set with --model (heatmaps too) or --ai-predictions",
        )
    frame, classes = read_predictions_like(path)
    by_case = {str(c).strip(): i for i, c in enumerate(frame["case"])}
    mal = np.full(len(frame), np.nan)
    if "malignant_probability" in frame.columns:
        mal = pd.to_numeric(frame["malignant_probability"], errors="coerce").to_numpy(float)
    out: dict[str, dict] = {}
    for case in cases:
        i = by_case.get(case)
        if i is None or not frame["ok"].iloc[i]:
            out[case] = {}  # the AI gave no usable answer: the trainee sees that
            continue
        probs = {c: round(float(frame[f"{PROB_PREFIX}{c}"].iloc[i]), 4) for c in classes}
        entry: dict = {"probabilities": probs}
        if np.isfinite(mal[i]):
            entry["malignant_probability"] = round(float(mal[i]), 4)
        out[case] = entry
    return out


def _heatmaps(model: Path, images: list[Path]) -> tuple[dict[str, str], list[str]]:
    """CAM overlays of the case images (PNG data URIs) and the model's top class per case."""
    from skinml.predict import ImagePredictor

    predictor = ImagePredictor(model)
    with tempfile.TemporaryDirectory(prefix="skinml_quiz_") as tmp:
        rows = predictor.predict_paths(images, heatmap_dir=tmp)
        uris, top = {}, []
        for img, row in zip(images, rows, strict=True):
            top.append(str(row.get("predicted_class", "")))
            if row.get("status") == "ok" and row.get("heatmap"):
                data = base64.b64encode(Path(row["heatmap"]).read_bytes()).decode("ascii")
                uris[img.stem] = "data:image/png;base64," + data
    return uris, top


def write_quiz(
    folder: str | PathLike[str],
    *,
    ai_support: bool = False,
    model: str | PathLike[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write the quiz of a built teaching set and record it in ``teaching_set.json``.

    Args:
        folder: the teaching-set folder (``cases/``, ``teaching_set.json``...).
        ai_support: two steps per case (own answer, then the AI and a final answer).
        model: the exported ``.onnx`` model, for heatmaps in AI mode (without it the
            quiz shows the AI's probabilities only).
        title: the page title (default: "Dermoscopy teaching set" and the case count).

    Returns:
        The written HTML file.

    Raises:
        DataError: no case images, or no fingerprint (neither card nor SHA256SUMS).
        ConfigError: AI mode without AI answers, or a model without heatmaps.
    """
    folder = Path(folder)
    card_path = folder / SET_CARD
    card = json.loads(card_path.read_text("utf-8")) if card_path.is_file() else {}
    fingerprint = card.get("fingerprint") or fingerprint_of_folder(folder)
    if not fingerprint:
        raise DataError(
            "the teaching set has no fingerprint (teaching_set.json and SHA256SUMS are missing)",
            file=folder,
            fix="rebuild the set with `skinml-teach build`",
        )
    images = _case_images(folder)
    cases = [p.stem for p in images]
    classes = list(card.get("classes") or [])
    if not classes:
        raise DataError(
            "teaching_set.json lists no classes, so the quiz would have no answer choices",
            file=card_path,
            fix="rebuild the set with `skinml-teach build`",
        )
    mode = AI_SUPPORT if ai_support else PLAIN
    ai = _ai_probabilities(folder, cases) if ai_support else {}
    heat_note = None
    if ai_support and model is not None:
        uris, top = _heatmaps(Path(model), images)
        for case, t in zip(cases, top, strict=True):
            if case in uris:
                ai[case]["heatmap"] = uris[case]
            shown = ai[case].get("probabilities") or {}
            if shown and t and t != max(shown, key=shown.get):
                log.warning(
                    "%s: the model's top class on the case image (%s) differs from "
                    "ai_answers.csv; the quiz shows ai_answers.csv",
                    case,
                    t,
                )
        heat_note = f"CAM heatmaps from {Path(model).name}"
    data = {
        "title": title or f"Dermoscopy teaching set ({len(cases)} cases)",
        "fingerprint": fingerprint,
        "mode": mode,
        "columns": list(QUIZ_COLUMNS),
        "classes": [{"code": c, "name": display_name(c)} for c in classes],
        "cases": [
            {"id": case, "image": _image_uri(img), **({"ai": ai[case]} if ai_support else {})}
            for case, img in zip(cases, images, strict=True)
        ],
    }
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    parts = {
        "title": html.escape(data["title"]),
        "css": _asset("quiz.css"),
        "js": _asset("quiz.js"),
        "data": payload,
    }
    page = _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _asset("quiz.html"))
    out = folder / QUIZ_FILES[mode]
    out.write_text(page, encoding="utf-8")
    if card_path.is_file():
        quizzes = card.get("quizzes", {})
        quizzes[mode] = {"file": out.name, "heatmaps": heat_note}
        card["quizzes"] = quizzes
        card_path.write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    return out
