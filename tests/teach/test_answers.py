"""Reading answer sheets: formats, synonyms, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinml.errors import DataError, ManyErrors
from skinml.teach.answers import NO_ANSWER, read_answers
from skinml.teach.reference import read_reference
from skinml.teach.vocabulary import normalise_diagnoses


def _write(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_synonyms_map_case_insensitively(tmp_path: Path) -> None:
    values = pd.Series(
        [
            "Melanoma",
            "NAEVUS",
            "mole",
            "Basal Cell Carcinoma",
            "bowen",
            "Solar lentigo",
            "lichen planus-like keratosis",
            "angioma",
            "MEL",
            "",
        ]
    )
    codes, applied = normalise_diagnoses(
        values, ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], file=tmp_path / "a.csv"
    )
    assert codes.tolist() == ["mel", "nv", "nv", "bcc", "akiec", "bkl", "bkl", "vasc", "mel", ""]
    assert applied["Melanoma"] == "mel" and "MEL" not in applied


def test_unknown_diagnosis_names_file_row_and_value(tmp_path: Path) -> None:
    values = pd.Series(["mel", "psoriasis", "nv", "wart"])
    with pytest.raises(ManyErrors) as err:
        normalise_diagnoses(values, ["mel", "nv"], file=tmp_path / "alice.csv")
    text = str(err.value)
    assert "alice.csv" in text and "row 3" in text and "'psoriasis'" in text
    assert "row 5" in text and "'wart'" in text and len(err.value.errors) == 2


def test_one_file_per_trainee_and_missing_answers_stay(
    small_reference: Path, tmp_path: Path
) -> None:
    ref = read_reference(small_reference)
    alice = _write(
        tmp_path / "alice.csv",
        [
            {"case": "case_001", "diagnosis": "Melanoma", "confidence": 80},
            {"case": "CASE_002", "diagnosis": "nv", "confidence": 60},
            {"case": "case_003", "diagnosis": "", "confidence": ""},
        ],
    )
    m = read_answers([alice], ref)
    assert m.sheets["trainee"].tolist() == ["alice"]
    assert m.codes.shape == (1, 10)
    mel, nv = ref.classes.index("mel"), ref.classes.index("nv")
    assert m.codes[0, :2].tolist() == [mel, nv]
    # blank answer and the 7 cases with no row at all are unanswered, not dropped
    assert (m.codes[0, 2:] == NO_ANSWER).all()
    np.testing.assert_allclose(m.confidence[0, :2], [0.8, 0.6])  # percentages rescaled
    assert m.synonyms[str(alice)] == {"Melanoma": "mel"}


def test_long_format_with_sessions(small_reference: Path, tmp_path: Path) -> None:
    ref = read_reference(small_reference)
    rows = []
    for trainee in ("bo", "cy"):
        for session in ("2026-01-10", "2026-03-02"):
            for case in ref.cases:
                rows.append(
                    {"trainee": trainee, "session": session, "case": case, "diagnosis": "nv"}
                )
    m = read_answers([_write(tmp_path / "long.csv", rows)], ref)
    assert len(m.sheets) == 4
    assert set(zip(m.sheets["trainee"], m.sheets["session"], strict=True)) == {
        ("bo", "2026-01-10"),
        ("bo", "2026-03-02"),
        ("cy", "2026-01-10"),
        ("cy", "2026-03-02"),
    }


def test_all_bad_rows_reported_together(small_reference: Path, tmp_path: Path) -> None:
    ref = read_reference(small_reference)
    bad = _write(
        tmp_path / "dan.csv",
        [
            {"case": "case_001", "diagnosis": "mel", "confidence": 0.9},
            {"case": "case_999", "diagnosis": "nv", "confidence": 0.5},
            {"case": "case_002", "diagnosis": "spitz", "confidence": 0.5},
            {"case": "case_001", "diagnosis": "nv", "confidence": 0.4},
            {"case": "case_004", "diagnosis": "nv", "confidence": "very"},
        ],
    )
    with pytest.raises(ManyErrors) as err:
        read_answers([bad], ref)
    text = str(err.value)
    assert "unknown case ID 'case_999'" in text and "row 3" in text
    assert "unknown diagnosis 'spitz'" in text and "row 4" in text
    assert "answered case 'case_001' 2 times" in text and "row 2" in text and "row 5" in text
    assert "confidence 'very' is not a number" in text
    assert len(err.value.errors) == 4


def test_duplicates_across_files_and_missing_columns(small_reference: Path, tmp_path: Path) -> None:
    ref = read_reference(small_reference)
    a = _write(tmp_path / "a.csv", [{"trainee": "eve", "case": "case_001", "diagnosis": "mel"}])
    b = _write(tmp_path / "b.csv", [{"trainee": "eve", "case": "case_001", "diagnosis": "nv"}])
    with pytest.raises(ManyErrors, match="'eve' answered case 'case_001' 2 times"):
        read_answers([a, b], ref)
    c = _write(tmp_path / "c.csv", [{"image": "case_001", "dx": "mel"}])
    with pytest.raises(DataError, match=r"missing columns \['case', 'diagnosis'\]"):
        read_answers([c], ref)


def test_reference_checks(tmp_path: Path) -> None:
    path = tmp_path / "reference.csv"
    pd.DataFrame(
        {
            "case": ["c1", "c1", "c2"],
            "diagnosis": ["mel", "nv", ""],
            "malignant": ["yes", "no", "maybe"],
        }
    ).to_csv(path, index=False)
    with pytest.raises(ManyErrors) as err:
        read_reference(path)
    text = str(err.value)
    assert "'c1' listed more than once" in text and "empty diagnosis" in text
    assert "malignant='maybe'" in text
    pd.DataFrame(
        {"case": ["c1", "c2"], "diagnosis": ["mel", "mel"], "malignant": [True, False]}
    ).to_csv(path, index=False)
    with pytest.raises(DataError, match="malignant in some rows and benign in others"):
        read_reference(path)


def test_reference_vocabulary_covers_unseen_ham_classes(small_reference: Path) -> None:
    ref = read_reference(small_reference)
    # the set has no df/vasc/akiec cases, but a trainee may still answer them
    assert ref.classes == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    assert ref.malignant_classes == ("akiec", "bcc", "mel")


def test_an_isic2017_set_accepts_ham_codes_and_synonyms(tmp_path: Path) -> None:
    """A set keeps its own class names; answers and the key map onto them via the table."""
    set_dir = tmp_path / "set"
    set_dir.mkdir()
    classes = ["melanoma", "nevus", "seborrheic_keratosis"]
    (set_dir / "teaching_set.json").write_text(
        f'{{"classes": {classes!r}, "malignant_classes": ["melanoma"]}}'.replace("'", '"')
    )
    pd.DataFrame(
        {  # the key was hand-edited: "Naevus" and "SK" are the set's nevus and SK
            "case": ["c1", "c2", "c3"],
            "diagnosis": ["melanoma", "Naevus", "SK"],
            "malignant": [True, False, False],
        }
    ).to_csv(set_dir / "reference.csv", index=False)
    ref = read_reference(set_dir / "reference.csv")
    assert ref.diagnosis == ("melanoma", "nevus", "seborrheic_keratosis")
    answers = _write(
        tmp_path / "fay.csv",
        [
            {"case": "c1", "diagnosis": "MEL"},
            {"case": "c2", "diagnosis": "nv"},
            {"case": "c3", "diagnosis": "seborrhoeic keratosis"},
        ],
    )
    m = read_answers([answers], ref)
    assert [ref.classes[k] for k in m.codes[0]] == list(ref.diagnosis)
    bad = _write(tmp_path / "gus.csv", [{"case": "c3", "diagnosis": "bkl"}])
    with pytest.raises(ManyErrors) as err:  # bkl is broader than SK: not guessed
        read_answers([bad], ref)
    assert "'bkl' (benign keratosis-like lesion) is not among the teaching set's classes" in str(
        err.value
    )
    assert str(classes) in str(err.value) and "Diagnosis vocabulary" in str(err.value)


def test_reference_outside_the_set_classes_lists_them(tmp_path: Path) -> None:
    (tmp_path / "teaching_set.json").write_text('{"classes": ["mel", "nv"]}')
    pd.DataFrame(
        {"case": ["c1", "c2"], "diagnosis": ["Melanoma", "psoriasis"], "malignant": [1, 0]}
    ).to_csv(tmp_path / "reference.csv", index=False)
    with pytest.raises(ManyErrors) as err:
        read_reference(tmp_path / "reference.csv")
    text = str(err.value)
    assert "row 3" in text and "'psoriasis' is not among the classes in teaching_set.json" in text
    assert "['mel', 'nv']" in text and len(err.value.errors) == 1
