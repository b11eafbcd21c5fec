"""SIMULATED readers with known error patterns, to test that scoring recovers them.

No public table of per-reader, per-image dermoscopy diagnoses exists (see
``shared/data/README.md``), so tests and benchmarks use simulated trainees and
a simulated AI whose mistakes are known in advance. Everything produced here
carries "simulated" in its trainee names or a ``simulated`` column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def simulate_answers(
    cases: Sequence[str],
    reference: Sequence[str],
    classes: Sequence[str],
    *,
    accuracy: float = 0.9,
    confusions: Mapping[str, str] | None = None,
    unanswered: float = 0.0,
    seed: int = 0,
    trainee: str | None = None,
    session: str | None = None,
) -> pd.DataFrame:
    """One simulated answer sheet.

    Args:
        cases: case IDs.
        reference: true diagnosis per case.
        classes: the answer vocabulary.
        accuracy: chance of a correct answer on cases not covered by ``confusions``.
        confusions: fixed mistakes, e.g. ``{"mel": "nv"}`` = every melanoma called nevus.
        unanswered: chance that a case is left blank.
        seed: random seed.
        trainee: adds a ``trainee`` column (long format) when given.
        session: adds a ``session`` column when given.

    Returns:
        Columns case, diagnosis, confidence (+ trainee, session); confidence is
        higher on correct answers, as for real readers.
    """
    rng = np.random.default_rng(seed)
    ref = np.asarray(reference, dtype=object)
    classes = list(classes)
    right = rng.random(len(ref)) < accuracy
    wrong_pick = rng.integers(0, len(classes) - 1, len(ref))
    answers = []
    for r, ok, w in zip(ref, right, wrong_pick, strict=True):
        if confusions and r in confusions:
            answers.append(confusions[r])
        elif ok:
            answers.append(r)
        else:
            others = [c for c in classes if c != r]
            answers.append(others[w % len(others)])
    answers = np.array(answers, dtype=object)
    correct = answers == ref
    conf = np.clip(np.where(correct, 0.75, 0.5) + rng.normal(0, 0.12, len(ref)), 0.05, 1.0)
    blank = rng.random(len(ref)) < unanswered
    answers[blank] = ""
    out = pd.DataFrame(
        {
            "case": list(cases),
            "diagnosis": answers,
            "confidence": np.round(np.where(blank, np.nan, conf), 2),
        }
    )
    if trainee is not None:
        out.insert(0, "trainee", trainee)
    if session is not None:
        out.insert(1, "session", session)
    return out


def simulate_predictions(
    images: Sequence[str],
    labels: Sequence[str],
    classes: Sequence[str],
    *,
    accuracy: float = 0.8,
    malignant: Sequence[str] = ("mel", "bcc", "akiec"),
    seed: int = 0,
) -> pd.DataFrame:
    """A SIMULATED skinml-predict output (same columns) for images with known labels.

    The simulated model is right with probability ``accuracy``; its probability
    vector is a Dirichlet draw sharpened towards the answer it gives.
    """
    rng = np.random.default_rng(seed)
    classes = list(classes)
    K = len(classes)
    idx = {c: i for i, c in enumerate(classes)}
    true = np.array([idx[lab] for lab in labels])
    right = rng.random(len(true)) < accuracy
    shift = rng.integers(1, K, len(true))
    pred = np.where(right, true, (true + shift) % K)
    probs = rng.dirichlet(np.ones(K), len(true))
    top = rng.uniform(0.45, 0.95, len(true))
    probs *= ((1 - top) / probs.sum(axis=1))[:, None]
    probs[np.arange(len(true)), pred] += top
    mal = np.array([c in set(malignant) for c in classes])
    frame = pd.DataFrame(
        {
            "input": list(images),
            "file": list(images),
            "status": "ok",
            "error": "",
            "predicted_class": [classes[p] for p in pred],
        }
    )
    for k, c in enumerate(classes):
        frame[f"p_{c}"] = np.round(probs[:, k], 5)
    frame["malignant_probability"] = np.round(probs[:, mal].sum(axis=1), 5)
    frame["malignant_flag"] = frame["malignant_probability"] >= 0.3
    frame["simulated"] = True
    return frame


def simulate_ai_support_session(
    cases: Sequence[str],
    reference: Sequence[str],
    ai: Sequence[str],
    classes: Sequence[str],
    *,
    trainee: str,
    accuracy: float,
    follow: float,
    years_training: float | None = None,
    fingerprint: str = "",
    session: str = "2026-12-01 09:00",
    seed: int = 0,
) -> pd.DataFrame:
    """A SIMULATED quiz export of the AI-support quiz, with known skill and reliance.

    The trainee's own answer is right with probability ``accuracy`` (else a wrong
    class, uniformly); where it differs from the AI's answer the trainee switches to
    the AI's with probability ``follow``, whether the AI is right or not. So planted
    over-reliance is ``follow`` and under-reliance ``1 - follow``, and the expected
    accuracy change is ``(1 - e)(1 - accuracy) follow - e * accuracy * follow`` for an
    AI wrong on a share ``e`` of cases (a wrong own answer equal to a wrong AI stays).

    Returns:
        The columns of :data:`skinml.teach.answer_columns.QUIZ_COLUMNS`, as quiz.html writes.
    """
    from skinml.teach.answer_columns import AI_SUPPORT, QUIZ_COLUMNS

    rng = np.random.default_rng(seed)
    ref = np.asarray(reference, dtype=object)
    ai = np.asarray(ai, dtype=object)
    classes = list(classes)
    n = len(ref)
    right = rng.random(n) < accuracy
    shift = rng.integers(1, len(classes), n)
    index = {c: i for i, c in enumerate(classes)}
    wrong = np.array(
        [classes[(index[r] + s) % len(classes)] for r, s in zip(ref, shift, strict=True)]
    )
    own = np.where(right, ref, wrong)
    switch = (own != ai) & (rng.random(n) < follow)
    final = np.where(switch, ai, own)
    own_conf = np.clip(np.where(own == ref, 0.7, 0.5) + rng.normal(0, 0.1, n), 0.2, 1.0)
    final_conf = np.clip(own_conf + np.where(final == ai, 0.1, 0.0), 0.2, 1.0)
    own_s = rng.lognormal(np.log(20.0), 0.4, n)
    ai_s = rng.lognormal(np.log(8.0), 0.4, n)
    out = pd.DataFrame(
        {
            "set_fingerprint": fingerprint,
            "quiz_mode": AI_SUPPORT,
            "trainee": trainee,
            "years_training": "" if years_training is None else years_training,
            "session": session,
            "case": list(cases),
            "diagnosis": final,
            "confidence": np.round(final_conf, 1),
            "unaided_diagnosis": own,
            "unaided_confidence": np.round(own_conf, 1),
            "aided_diagnosis": final,
            "aided_confidence": np.round(final_conf, 1),
            "seconds": np.round(own_s + ai_s, 1),
            "unaided_seconds": np.round(own_s, 1),
            "aided_seconds": np.round(ai_s, 1),
        }
    )
    return out[list(QUIZ_COLUMNS)]
