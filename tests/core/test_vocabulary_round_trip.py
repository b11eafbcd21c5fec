"""Every written form in the table reads as the same code in a manifest, an answer sheet and QC."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from skinml.data.manifest import read_manifest
from skinml.qc.records import validate_records
from skinml.teach.vocabulary import normalise_diagnoses
from skinml.vocabulary import diagnosis_table

TABLE = diagnosis_table()
FORMS = [(form, dx.code) for dx in TABLE for form in dx.forms]


def _shouted(form: str) -> str:
    """The form as a hurried clerk types it: upper case, padded, '_' for spaces."""
    return f" {form.upper().replace(' ', '_')}  "


def test_every_form_round_trips_through_manifest_answers_and_qc(tmp_path: Path) -> None:
    written = [f for f, _ in FORMS] + [_shouted(f) for f, _ in FORMS]
    expected = [code for _, code in FORMS] * 2
    csv = tmp_path / "manifest.csv"
    pd.DataFrame({"image": [f"{i}.jpg" for i in range(len(written))], "label": written}).to_csv(
        csv, index=False
    )
    from_manifest = read_manifest(csv).frame["label"].tolist()

    from_answers, applied = normalise_diagnoses(
        pd.Series(written), list(TABLE.diagnoses), file=tmp_path / "answers.csv"
    )

    records = pd.DataFrame(
        {
            "hospital": ["A", "B"] * (len(written) // 2),
            "diagnosis": written,
            "reference": list(reversed(written)),
        }
    )
    qc = validate_records(records).frame
    assert from_manifest == expected
    assert from_answers.tolist() == expected
    assert qc["diagnosis"].tolist() == expected
    assert qc["reference"].tolist() == list(reversed(expected))
    assert applied["melanoma"] == "mel" and "mel" not in applied


def test_a_fixed_class_list_reads_every_form_of_its_diagnoses() -> None:
    """ISIC 2017's own names: each synonym of mel, nv or SK lands on its name in all readers."""
    classes = ["melanoma", "nevus", "seborrheic_keratosis"]
    to_class = {"mel": "melanoma", "nv": "nevus", "seborrheic_keratosis": "seborrheic_keratosis"}
    pairs = [(f, to_class[c]) for f, c in FORMS if c in to_class]
    got, _ = normalise_diagnoses(pd.Series([f for f, _ in pairs]), classes, file="a.csv")
    assert got.tolist() == [c for _, c in pairs]
