"""Reading quiz exports: the extra columns, and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinml.errors import ManyErrors
from skinml.teach.answer_columns import QUIZ_COLUMNS
from skinml.teach.answers import NO_ANSWER, read_answers
from skinml.teach.cohort import latest_sessions
from skinml.teach.pipeline import score_session
from skinml.teach.reference import read_reference


def export(
    reference, edits: dict | None = None, *, trainee="ann", session="2026-12-01 09:30", years="2"
) -> pd.DataFrame:
    """A quiz export as quiz.js writes it (AI-support mode): own answer = key, final = nv."""
    ref = reference.frame
    n = len(ref)
    frame = pd.DataFrame(
        {
            "set_fingerprint": reference.fingerprint,
            "quiz_mode": "ai_support",
            "trainee": trainee,
            "years_training": years,
            "session": session,
            "case": ref["case"],
            "diagnosis": "nv",
            "confidence": "0.8",
            "unaided_diagnosis": ref["diagnosis"],
            "unaided_confidence": "0.6",
            "aided_diagnosis": "nv",
            "aided_confidence": "0.8",
            "seconds": "12.5",
            "unaided_seconds": "8.0",
            "aided_seconds": "4.5",
        }
    )[list(QUIZ_COLUMNS)]
    for (row, column), value in (edits or {}).items():
        frame.loc[row, column] = value
    assert len(frame) == n
    return frame


@pytest.fixture
def ref(small_reference: Path):
    (small_reference.parent / "teaching_set.json").write_text(
        '{"fingerprint": "0123456789abcdef", "classes": ["bcc", "bkl", "mel", "nv"], '
        '"malignant_classes": ["bcc", "mel"]}'
    )
    return read_reference(small_reference)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_quiz_export_is_read_with_every_column(ref, tmp_path: Path) -> None:
    frame = export(ref, {(3, "diagnosis"): "", (3, "aided_diagnosis"): "", (9, "seconds"): ""})
    m = read_answers([_csv(frame, tmp_path / "answers_ann.csv")], ref)
    assert m.ai_support.tolist() == [True]
    assert m.sheets["years_training"].tolist() == [2.0]
    assert m.sheets["set_fingerprint"].tolist() == ["0123456789abcdef"]
    assert (m.unaided[0] == ref.codes).all()  # the own answers were the key
    nv = ref.classes.index("nv")
    assert m.codes[0, 3] == NO_ANSWER and (np.delete(m.codes[0], 3) == nv).all()
    assert m.confidence[0, 0] == pytest.approx(0.8) and np.isnan(m.confidence[0, 3])
    assert m.unaided_confidence[0, 0] == pytest.approx(0.6)
    assert m.seconds[0, 0] == 12.5 and np.isnan(m.seconds[0, 9])
    assert m.unaided_seconds[0, 1] == 8.0 and m.aided_seconds[0, 1] == 4.5


def test_unanswered_cases_are_counted_not_dropped(ref, tmp_path: Path) -> None:
    frame = export(ref).iloc[:7]  # three rows missing entirely
    frame.loc[0, ["diagnosis", "aided_diagnosis"]] = ""  # and one final answer left blank
    out = score_session(
        ref.source,
        [_csv(frame, tmp_path / "a.csv")],
        tmp_path / "r",
        n_bootstrap=50,
        reports="none",
        progress=False,
    )
    summary = pd.read_csv(out.summary_csv)
    assert summary["n_unanswered"].tolist() == [4]
    assert summary["n_cases"].tolist() == [10]
    effect = pd.read_csv(out.ai_effect_csv)
    assert effect["unaided_accuracy"].tolist() == [0.7]  # 7 own answers = key, 3 missing
    assert effect["aided_accuracy"].tolist() == [0.3]  # the final nv is right on cases 2, 4, 7


def test_answers_from_another_set_are_refused(ref, tmp_path: Path) -> None:
    frame = export(ref).assign(set_fingerprint="fedcba9876543210")
    path = _csv(frame, tmp_path / "answers_other_set.csv")
    with pytest.raises(ManyErrors) as err:
        read_answers([path], ref)
    text = str(err.value)
    assert "another teaching set" in text and "answers_other_set.csv" in text
    assert "row 2" in text and "10 rows are affected" in text
    assert len(err.value.errors) == 1


def test_hand_edited_nonsense_names_file_and_row(ref, tmp_path: Path) -> None:
    frame = export(
        ref,
        {
            (0, "seconds"): "-3",
            (1, "unaided_seconds"): "soon",
            (2, "years_training"): "lots",
            (3, "quiz_mode"): "maybe",
            (4, "aided_diagnosis"): "mel",  # the scored diagnosis says nv
            (5, "unaided_diagnosis"): "wart",
            (6, "unaided_diagnosis"): "",  # an aided answer without the own answer first
            (7, "unaided_confidence"): "very",
        },
    )
    path = _csv(frame, tmp_path / "edited.csv")
    with pytest.raises(ManyErrors) as err:
        read_answers([path], ref)
    problems = {(e.row, e.column) for e in err.value.errors}
    assert problems == {
        (2, "seconds"),
        (3, "unaided_seconds"),
        (4, "years_training"),
        (5, "quiz_mode"),
        (6, "aided_diagnosis"),
        (7, "unaided_diagnosis"),
        (8, "unaided_diagnosis"),
        (9, "unaided_confidence"),
    }
    assert all(e.file.endswith("edited.csv") for e in err.value.errors)
    text = str(err.value)
    assert "diagnosis 'nv' and aided_diagnosis 'mel' differ" in text
    assert "unknown diagnosis 'wart'" in text


def test_one_session_has_one_years_of_training_and_one_mode(ref, tmp_path: Path) -> None:
    frame = export(ref, {(5, "years_training"): "4", (6, "quiz_mode"): "plain"})
    frame.loc[6, ["unaided_diagnosis", "aided_diagnosis"]] = ""
    with pytest.raises(ManyErrors) as err:
        read_answers([_csv(frame, tmp_path / "mixed.csv")], ref)
    text = str(err.value)
    assert "has years of training '2' in row 2 but '4' here" in text
    assert "has quiz_mode 'ai_support' in row 2 but 'plain' here" in text
    assert {e.row for e in err.value.errors} == {7, 8}


def test_a_trainee_id_in_two_files(ref, tmp_path: Path) -> None:
    a = _csv(export(ref, trainee="r07"), tmp_path / "answers_r07.csv")
    b = _csv(export(ref, trainee="r07"), tmp_path / "answers_r07_other_pc.csv")
    with pytest.raises(ManyErrors) as err:
        read_answers([a, b], ref)
    assert len(err.value.errors) == 1  # one message for the shared ID, not one per case
    text = str(err.value)
    assert "appears in 2 answer files" in text and "and 9 more cases" in text
    assert "answers_r07_other_pc.csv" in text and "two trainees share an ID" in text


def test_sessions_in_any_date_format_order_as_dates(ref, tmp_path: Path) -> None:
    files = [
        _csv(export(ref, session="9 Jan 2027 10:00"), tmp_path / "a.csv"),
        _csv(export(ref, session="2026-12-12 08:00"), tmp_path / "b.csv"),
        _csv(export(ref, session="12/20/2026 14:00"), tmp_path / "c.csv"),
    ]
    m = read_answers(files, ref)
    latest = latest_sessions(m.sheets)
    assert m.sheets.loc[latest, "session"].tolist() == ["9 Jan 2027 10:00"]


def test_plain_export_without_ai_columns_is_a_plain_sheet(ref, tmp_path: Path) -> None:
    frame = export(ref).assign(quiz_mode="plain", unaided_diagnosis="", aided_diagnosis="")
    m = read_answers([_csv(frame, tmp_path / "plain.csv")], ref)
    assert m.ai_support.tolist() == [False] and (m.unaided == NO_ANSWER).all()
    out = score_session(
        ref.source, [tmp_path / "plain.csv"], tmp_path / "r", reports="none", progress=False
    )
    assert out.scores.ai_effect is None and out.ai_effect_csv is None


@pytest.mark.parametrize("follow", [0.0, 1.0])
def test_simulated_ai_support_session_is_a_valid_export(ref, tmp_path: Path, follow) -> None:
    from skinml.teach.simulate import simulate_ai_support_session

    ai = ["nv"] * len(ref.cases)
    frame = simulate_ai_support_session(
        ref.cases, ref.diagnosis, ai, ref.classes, trainee="simulated_x", accuracy=0.5,
        follow=follow, years_training=3, fingerprint=ref.fingerprint, seed=4,
    )  # fmt: skip
    m = read_answers([_csv(frame, tmp_path / "sim.csv")], ref)
    assert m.ai_support.tolist() == [True] and m.sheets["years_training"].tolist() == [3.0]
    nv = ref.classes.index("nv")
    expected = np.full(len(ref.cases), nv) if follow else m.unaided[0]
    assert (m.codes[0] == expected).all()
