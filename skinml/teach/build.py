"""Build a teaching set from any image manifest: anonymised cases, a key, an answer sheet.

Selection is deterministic for a seed and works in three steps:

1. one image per lesion (two photos of the same lesion would give the
   answer away), optionally restricted to one split;
2. a number of cases per diagnosis, ``balanced`` (as equal as availability
   allows; rare diagnoses are what residents need to see) or ``proportional``
   to prevalence;
3. within each diagnosis a share of *hard* cases, where the AI gave the true
   diagnosis a probability below 0.5 (it was wrong or unsure), and the rest
   *easy*. Without AI answers every case is of unknown difficulty.

The output folder holds ``cases/case_001.jpg``... (pixels only: no EXIF, GPS or
file names), ``answer_sheet.csv``, the browser quiz ``quiz.html`` (and, with an AI,
``quiz_ai_support.html``; see :mod:`skinml.teach.quiz`) and — for the instructor
only — ``reference.csv``, ``ai_answers.csv`` and ``teaching_set.json``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.data.manifest import Manifest
from skinml.errors import ConfigError, DataError, ImageReadError
from skinml.teach.ai_answers import (
    PROB_PREFIX,
    check_model_knows,
    match_predictions,
    read_predictions,
)
from skinml.teach.fingerprint import fingerprint_from_digests
from skinml.teach.reference import SET_CARD
from skinml.vocabulary import LabelSpace, lookup, malignant_codes

log = logging.getLogger(__name__)

#: The AI's probability for the true diagnosis below which a case counts as hard.
HARD_BELOW = 0.5
ALLOCATIONS = ("balanced", "proportional")
#: Which quizzes to write: ``auto`` = plain, and AI support too when the set has AI answers.
QUIZ_CHOICES = ("auto", "plain", "ai_support", "both", "none")


@dataclass(frozen=True)
class TeachingSet:
    """Where a built teaching set lies and what is in it."""

    folder: Path
    reference: pd.DataFrame
    card: dict

    @property
    def reference_csv(self) -> Path:
        return self.folder / "reference.csv"

    @property
    def answer_sheet(self) -> Path:
        return self.folder / "answer_sheet.csv"

    @property
    def quiz(self) -> Path | None:
        """The plain browser quiz (None when none was written)."""
        p = self.folder / "quiz.html"
        return p if p.is_file() else None

    @property
    def quiz_ai_support(self) -> Path | None:
        """The two-step AI-support quiz (None when none was written)."""
        p = self.folder / "quiz_ai_support.html"
        return p if p.is_file() else None

    @property
    def ai_answers(self) -> Path | None:
        p = self.folder / "ai_answers.csv"
        return p if p.is_file() else None


def allocate(available: dict[str, int], n: int, allocation: str = "balanced") -> dict[str, int]:
    """Cases per diagnosis summing to ``n``, never more than available (pure function).

    ``balanced`` fills every diagnosis up to an equal share and hands what a
    rare diagnosis cannot use to the others; ``proportional`` uses largest
    remainders on prevalence. Ties go to the more common diagnosis, then by name.
    """
    if allocation not in ALLOCATIONS:
        raise ConfigError(f"unknown allocation {allocation!r}", expected=f"one of {ALLOCATIONS}")
    total = sum(available.values())
    if n > total:
        raise DataError(
            f"asked for {n} cases but only {total} distinct lesions are available",
            fix="lower -n, or build from a larger manifest or split",
        )
    order = sorted(available, key=lambda c: (-available[c], c))
    out = dict.fromkeys(available, 0)
    if allocation == "proportional":
        exact = {c: n * available[c] / total for c in order}
        out = {c: int(np.floor(exact[c])) for c in order}
        rest = n - sum(out.values())
        for c in sorted(order, key=lambda c: (-(exact[c] - out[c]), -available[c], c))[:rest]:
            out[c] += 1
        return out
    remaining = n
    open_classes = [c for c in order if available[c] > 0]
    while remaining > 0 and open_classes:
        share = max(remaining // len(open_classes), 1)
        for c in list(open_classes):
            if remaining == 0:
                break
            take = min(share, available[c] - out[c], remaining)
            out[c] += take
            remaining -= take
            if out[c] >= available[c]:
                open_classes.remove(c)
    return out


def _one_per_lesion(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    shuffled = frame.iloc[rng.permutation(len(frame))]
    return shuffled.drop_duplicates("lesion_id").sort_index()


def _rank_candidates(
    pool: pd.DataFrame, k: int, hard_fraction: float, rng: np.random.Generator
) -> tuple[list[int], int]:
    """Order one diagnosis' candidates: the hard quota first, then easy, then the rest."""
    idx = pool.index.to_numpy()
    p_true = pool["ai_p_true"].to_numpy(dtype=float)
    known = np.isfinite(p_true)
    if not known.any():
        return list(rng.permutation(idx)), 0
    hard = idx[known & (p_true < HARD_BELOW)]
    easy = idx[known & (p_true >= HARD_BELOW)]
    n_hard = round(k * hard_fraction)
    hard, easy = list(rng.permutation(hard)), list(rng.permutation(easy))
    # Hard quota from the hard pool, the rest from the easy pool; each side tops up the other.
    first = hard[:n_hard] + easy[: k - min(n_hard, len(hard))]
    taken = set(first)
    rest = [i for i in hard + easy if i not in taken]
    return first + rest, n_hard


def _ai_table(
    manifest: Manifest,
    pool: pd.DataFrame,
    *,
    model: Path | None,
    ai_predictions: Path | None,
    classes_out: list[str],
    progress: bool,
) -> tuple[pd.DataFrame | None, list[str], Path | None]:
    """Predictions for the pool's images (running the model if needed), and the class list."""
    if model is None and ai_predictions is None:
        return None, [], None
    images = [manifest.root / p for p in pool["image"]]
    if model is not None:
        from skinml.predict import run_predictions  # lazy: written by the export helper

        tmp = Path(tempfile.mkdtemp(prefix="skinml_teach_"))
        csv = tmp / "predictions.csv"
        run_predictions(model, [str(p) for p in images], csv, batch_size=32, progress=progress)
        ai_predictions = csv
    frame, classes = read_predictions(ai_predictions)
    classes_out.extend(classes)
    rows = match_predictions(frame, images, predictions_path=Path(ai_predictions))
    return frame, rows.tolist(), ai_predictions


def build_teaching_set(
    manifest: Manifest,
    out: str | PathLike[str],
    n: int,
    *,
    seed: int = 0,
    hard_fraction: float = 0.3,
    malignant: Sequence[str] | None = None,
    model: str | PathLike[str] | None = None,
    ai_predictions: str | PathLike[str] | None = None,
    allocation: str = "balanced",
    split: str | None = None,
    candidates_per_case: int = 5,
    overwrite: bool = False,
    progress: bool = True,
    quiz: str = "auto",
) -> TeachingSet:
    """Select, anonymise and write a teaching set (see the module docstring).

    Args:
        manifest: the image manifest; classes are its ``label`` column, in the
            model's class names when there is a model (``melanoma`` -> ``mel``).
        out: output folder (must be empty or absent unless ``overwrite``).
        n: number of cases.
        seed: selection and case-order seed (same seed, same set).
        hard_fraction: share of hard cases per diagnosis (needs AI answers).
        malignant: malignant diagnoses (codes or synonyms); default the model's, else
            the labels the diagnosis table marks malignant (``mel, bcc, akiec``...).
        model: an exported skinml ``.onnx`` model, run on the candidates.
        ai_predictions: a skinml-predict CSV covering the manifest's images.
        allocation: ``balanced`` or ``proportional`` cases per diagnosis.
        split: only use manifest rows of this split.
        candidates_per_case: when running a model, how many candidates per
            requested case it scores (bounds the model's work on big manifests).
        overwrite: replace an existing teaching set in ``out``.
        progress: show progress bars.
        quiz: browser quizzes to write, one of :data:`QUIZ_CHOICES` (``ai_support``
            needs AI answers; its heatmaps need ``model``).

    Raises:
        ConfigError: bad options (both a model and predictions, a hard
            fraction outside [0, 1], unknown malignant classes).
        DataError: too few lesions, a diagnosis the model does not know,
            or no readable image left for a diagnosis.
    """
    if quiz not in QUIZ_CHOICES:
        raise ConfigError(f"unknown quiz {quiz!r}", expected=f"one of {QUIZ_CHOICES}")
    has_ai = model is not None or ai_predictions is not None
    if quiz in ("ai_support", "both") and not has_ai:
        raise ConfigError(
            "an AI-support quiz needs the AI's answers",
            fix="give --model (probabilities and heatmaps) or --ai-predictions, or --quiz plain",
        )
    if model is not None and ai_predictions is not None:
        raise ConfigError(
            "give either a model or a predictions CSV, not both",
            fix="drop --model or --ai-predictions",
        )
    if not 0.0 <= hard_fraction <= 1.0:
        raise ConfigError(f"hard_fraction={hard_fraction} is outside [0, 1]")
    if n < 1:
        raise ConfigError(f"n={n}: a teaching set needs at least one case")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"output folder {str(out)!r} is not empty",
            fix="choose a new folder, or pass --overwrite",
        )
    rng = np.random.default_rng(seed)
    frame = manifest.frame if split is None else manifest.frame[manifest.frame["split"] == split]
    if frame.empty:
        raise DataError(
            f"no rows{'' if split is None else f' in split {split!r}'}",
            file=manifest.name,
            fix="check the manifest and --split",
        )
    pool = _one_per_lesion(frame, rng)
    model_meta = None
    if model is not None:
        from skinml.modelfile import read_metadata

        model_meta = read_metadata(model)
        pool = _in_model_terms(pool, model_meta.classes)
        check_model_knows(pool["label"].unique(), model_meta.classes, source=str(model))
        quota = allocate(pool["label"].value_counts().to_dict(), n, allocation)
        keep = []
        for label, grp in pool.groupby("label"):
            m = max(candidates_per_case * quota[label], 20)
            keep.extend(rng.permutation(grp.index.to_numpy())[:m].tolist())
        pool = pool.loc[sorted(keep)]
    model_classes: list[str] = []
    preds, rows, pred_path = _ai_table(
        manifest,
        pool,
        model=None if model is None else Path(model),
        ai_predictions=None if ai_predictions is None else Path(ai_predictions),
        classes_out=model_classes,
        progress=progress,
    )
    excluded: list[dict] = []
    pool = pool.copy()
    pool["ai_row"] = -1
    pool["ai_p_true"] = np.nan
    if preds is not None:
        pool = _in_model_terms(pool, model_classes)
        check_model_knows(pool["label"].unique(), model_classes, source=str(pred_path))
        pool["ai_row"] = rows
        ok = preds["ok"].to_numpy()
        has = np.array([r >= 0 and ok[r] for r in rows], dtype=bool)
        for img in pool.loc[~has, "image"]:
            excluded.append({"image": img, "reason": "no usable AI prediction"})
        pool = pool[has]
        pool["ai_p_true"] = [
            float(preds[f"{PROB_PREFIX}{lab}"].iloc[r])
            for lab, r in zip(pool["label"], pool["ai_row"], strict=True)
        ]
        if excluded:
            log.warning(
                "%d lesions without a usable AI prediction were not eligible", len(excluded)
            )
    malignant_classes = _malignant(malignant, model_meta, pool, model_classes)
    quota = allocate(pool["label"].value_counts().to_dict(), n, allocation)

    chosen: list[tuple[int, str]] = []
    iterator = sorted(quota)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="selecting and anonymising cases", unit="diagnosis")
    images: dict[int, object] = {}
    for label in iterator:
        k = quota[label]
        ranked, _ = _rank_candidates(pool[pool["label"] == label], k, hard_fraction, rng)
        got = 0
        for i in ranked:
            if got == k:
                break
            try:
                images[i] = _read(manifest.root / pool.at[i, "image"])
            except ImageReadError as exc:
                excluded.append({"image": pool.at[i, "image"], "reason": str(exc)})
                continue
            chosen.append((i, label))
            got += 1
        if got < k:
            raise DataError(
                f"only {got} readable images for diagnosis {label!r}, {k} needed",
                file=manifest.name,
                fix="fix the unreadable images or lower -n",
            )
    ts = _write(
        out,
        manifest,
        pool,
        chosen,
        images,
        rng,
        preds,
        model_classes,
        malignant_classes,
        excluded,
        dict(
            n=n,
            seed=seed,
            hard_fraction=hard_fraction,
            allocation=allocation,
            split=split,
            model=None if model is None else str(model),
            ai_predictions=None if ai_predictions is None else str(ai_predictions),
        ),
    )
    _write_quizzes(ts, quiz, has_ai, model)
    return ts


def _write_quizzes(ts: TeachingSet, quiz: str, has_ai: bool, model) -> None:
    from skinml.teach.quiz import QUIZ_FILES, write_quiz

    modes = {
        "auto": [False, True] if has_ai else [False],
        "plain": [False],
        "ai_support": [True],
        "both": [False, True],
        "none": [],
    }[quiz]
    for name in QUIZ_FILES.values():  # a quiz of an overwritten set must not survive it
        (ts.folder / name).unlink(missing_ok=True)
    for ai_support in modes:
        write_quiz(ts.folder, ai_support=ai_support, model=model if ai_support else None)
    if modes:
        ts.card.update(json.loads((ts.folder / SET_CARD).read_text(encoding="utf-8")))


def _read(path: Path):
    from skinml.imaging.read import read_image

    return read_image(path)


def _in_model_terms(pool: pd.DataFrame, model_classes: Sequence[str]) -> pd.DataFrame:
    """Labels as the model's classes for the same diagnosis (``melanoma`` -> ``mel``).

    The key, the AI's answers and the trainees' answers must share one set of
    codes; a label the model cannot name is left for :func:`check_model_knows`.
    """
    found, _ = LabelSpace(model_classes, name="the AI model's classes").mapping(pool["label"])
    return pool.assign(label=pool["label"].map(lambda lab: found.get(lab, lab)))


def _malignant(malignant, model_meta, pool, model_classes) -> list[str]:
    labels = set(pool["label"]) | set(model_classes)
    if model_meta is not None and malignant is None:
        return sorted(model_meta.malignant)
    if malignant is None:
        chosen = [c for c in labels if (dx := lookup(c)) is not None and dx.malignant]
        if not chosen:
            raise ConfigError(
                f"none of the classes {sorted(labels)} is malignant in the diagnosis table "
                f"(malignant codes: {sorted(malignant_codes())})",
                fix="name the malignant classes with --malignant (comma-separated)",
            )
        return sorted(chosen)
    space = LabelSpace(sorted(labels), name="the classes")
    found, unknown = space.mapping(malignant)
    if unknown:
        raise ConfigError(
            f"--malignant names {unknown}, which are not among the classes {sorted(labels)}",
            fix="spell them as in the manifest's label column, or as a synonym of one",
        )
    return sorted(set(found.values()))


def _write(
    out,
    manifest,
    pool,
    chosen,
    images,
    rng,
    preds,
    model_classes,
    malignant_classes,
    excluded,
    options,
) -> TeachingSet:
    from skinml import __version__
    from skinml.imaging.read import save_clean
    from skinml.integrity.checksums import sha256_file, write_checksum_list

    order = rng.permutation(len(chosen))
    width = max(3, len(str(len(chosen))))
    cases_dir = out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    for old in cases_dir.glob("case_*.jpg"):
        old.unlink()
    ref_rows, ai_rows, digests = [], [], {}
    for number, j in enumerate(order, start=1):
        i, label = chosen[j]
        case = f"case_{number:0{width}d}"
        path = save_clean(images[i], cases_dir / f"{case}.jpg")
        digests[f"cases/{path.name}"] = sha256_file(path)
        p_true = pool.at[i, "ai_p_true"]
        ref_rows.append(
            {
                "case": case,
                "diagnosis": label,
                "malignant": label in malignant_classes,
                "source_image": pool.at[i, "image"],
                "lesion_id": pool.at[i, "lesion_id"],
                "difficulty": "unknown"
                if not np.isfinite(p_true)
                else ("hard" if p_true < HARD_BELOW else "easy"),
                "ai_p_reference": p_true,
            }
        )
        if preds is not None:
            ai_rows.append(_ai_row(case, preds.iloc[int(pool.at[i, "ai_row"])], model_classes))
    reference = pd.DataFrame(ref_rows)
    reference.to_csv(out / "reference.csv", index=False)
    pd.DataFrame({"case": reference["case"], "diagnosis": "", "confidence": ""}).to_csv(
        out / "answer_sheet.csv", index=False
    )
    if ai_rows:
        pd.DataFrame(ai_rows).to_csv(out / "ai_answers.csv", index=False)
    write_checksum_list(digests, out / "SHA256SUMS")
    labels = pd.DataFrame({"label": manifest.frame["label"].unique()})
    classes = sorted(set(_in_model_terms(labels, model_classes)["label"]) | set(model_classes))
    card = {
        "what": "skinml teaching set: hand out quiz.html (or cases/ and answer_sheet.csv) "
        "only; reference.csv, ai_answers.csv and this file are the instructor's",
        "skinml_version": __version__,
        "fingerprint": fingerprint_from_digests(digests),
        "manifest": manifest.name,
        "manifest_root": str(manifest.root),
        **options,
        "hard_rule": f"AI probability for the true diagnosis < {HARD_BELOW}",
        "classes": classes,
        "malignant_classes": [c for c in malignant_classes if c in classes],
        "n_cases": len(reference),
        "cases_per_diagnosis": reference["diagnosis"].value_counts().sort_index().to_dict(),
        "cases_per_difficulty": reference["difficulty"].value_counts().sort_index().to_dict(),
        "excluded_candidates": {"n": len(excluded), "first_20": excluded[:20]},
    }
    (out / SET_CARD).write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    return TeachingSet(folder=out, reference=reference, card=card)


def _ai_row(case: str, pred: pd.Series, classes: list[str]) -> dict:
    ok = bool(pred["ok"])
    label = str(pred["predicted_class"]) if ok else ""
    row = {
        "case": case,
        "diagnosis": label,
        "confidence": float(pred[f"{PROB_PREFIX}{label}"]) if ok else np.nan,
        "malignant_probability": pred.get("malignant_probability", np.nan),
        "malignant_flag": pred.get("malignant_flag", np.nan),
        "status": pred.get("status", "ok" if ok else "error"),
        "error": pred.get("error", ""),
    }
    for c in classes:
        row[f"{PROB_PREFIX}{c}"] = pred[f"{PROB_PREFIX}{c}"]
    return row
