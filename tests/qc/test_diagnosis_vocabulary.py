"""QC records go through the one diagnosis vocabulary (SIMULATED records)."""

from __future__ import annotations

import pandas as pd

from skinml.qc.pipeline import QcOptions, analyse_records
from skinml.qc.records import malignant_mask, validate_records


def _records() -> pd.DataFrame:
    """Three hospitals writing the same diagnoses their own way."""
    return pd.DataFrame(
        {
            "hospital": ["A", "A", "B", "B", "C", "C", "C"],
            "diagnosis": ["Melanoma", "naevus", "mel", "NV ", "MEL", "Psoriasis", "pso"],
            "reference": ["mel", "nevus", "malignant melanoma", "nv", "mel", "psoriasis", "AD"],
            "ai": ["MEL", "nv", "melanoma", "Naevus", "mel", "psoriasis", "atopic eczema"],
        }
    )


def test_one_diagnosis_written_three_ways_is_one_code_in_every_column() -> None:
    rec = validate_records(_records())
    assert rec.frame["diagnosis"].tolist() == ["mel", "nv", "mel", "nv", "mel"] + ["psoriasis"] * 2
    assert rec.frame["reference"].tolist()[:5] == ["mel", "nv", "mel", "nv", "mel"]
    assert rec.frame["reference"].iloc[-1] == "atopic_dermatitis"
    assert rec.frame["ai"].tolist()[:5] == ["mel", "nv", "mel", "nv", "mel"]
    res = analyse_records(rec, QcOptions(n_bootstrap=10, progress=False))
    assert res.summary["malignant_set"] == ["mel"]
    mix = res.tables["mix_crude"].set_index(["hospital", "diagnosis"])
    assert set(mix.index.get_level_values("diagnosis")) == {"mel", "nv", "psoriasis"}
    assert mix.loc[("C", "psoriasis"), "count"] == 2  # "Psoriasis" and "pso" counted together
    ai = res.tables["agreement_ai"].set_index("hospital")
    assert ai.loc["B", "agreement"] == 1.0  # "mel" vs "melanoma", "NV " vs "Naevus"


def test_vocabulary_accepts_synonyms_and_lists_itself_for_the_rest() -> None:
    rec = validate_records(_records(), vocabulary=["melanoma", "nevus", "eczema"])
    # psoriasis is outside; atopic dermatitis is counted under the listed eczema
    assert rec.frame["reference"].tolist() == ["mel", "nv", "mel", "nv", "mel"]
    assert set(rec.frame["diagnosis"]) == {"mel", "nv"}
    ex = rec.excluded
    psoriasis = ex[(ex["row"] == 6) & (ex["column"] == "diagnosis")].iloc[0]
    assert psoriasis["value"] == "Psoriasis"
    assert psoriasis["reason"].startswith(
        "diagnosis not in the vocabulary (accepted: eczema, mel, nv"
    )
    assert "Diagnosis vocabulary" in psoriasis["reason"]
    assert set(ex.loc[ex["row"] == 7, "column"]) == {"diagnosis"}  # pso; its AD reference is eczema


def test_malignant_codes_may_be_synonyms() -> None:
    labels = pd.Series(["mel", "bcc", "nv", None])
    assert malignant_mask(labels, ["Melanoma"]).tolist()[:3] == [True, False, False]
    assert malignant_mask(labels).tolist()[:3] == [True, True, False]  # the table's default
    opts = QcOptions(malignant=frozenset({"basal cell carcinoma"}), n_bootstrap=10, progress=False)
    res = analyse_records(validate_records(_records()), opts)
    assert res.summary["malignant_codes"] == ["bcc"]
