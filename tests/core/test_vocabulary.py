"""The diagnosis table and the mapping of written labels onto a context's classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinml.errors import ConfigError, DataError, ManyErrors
from skinml.vocabulary import (
    LabelSpace,
    canonical,
    diagnosis_table,
    display_name,
    label_key,
    malignant_codes,
    map_labels,
    markdown_table,
    parse_table,
)

HAM = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
ISIC2017 = ("melanoma", "nevus", "seborrheic_keratosis")
README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "code\tname\tmalignant\tparent\tsynonyms\n"


def test_no_written_form_names_two_codes() -> None:
    seen: dict[str, str] = {}
    for dx in diagnosis_table():
        for form in dx.forms:
            assert seen.setdefault(label_key(form), dx.code) == dx.code, (form, dx.code)
    assert set(seen.values()) == set(diagnosis_table().diagnoses)


def test_a_table_with_a_form_naming_two_codes_is_refused() -> None:
    text = HEADER + "mel\tmelanoma\tyes\t-\tmm\nnv\tnevus\tno\t-\tMM | mole\n"
    with pytest.raises(DataError, match="'MM' would name both 'mel' and 'nv'"):
        parse_table(text, source="bad.tsv")
    with pytest.raises(DataError, match="unknown parent"):
        parse_table(HEADER + "sk\tseborrheic keratosis\tno\tbkl\t\n")


def test_every_parent_exists_and_codes_are_their_own_key() -> None:
    table = diagnosis_table()
    for dx in table:
        assert dx.parent is None or dx.parent in table.diagnoses
        assert canonical(dx.code) == dx.code
    assert set(HAM) <= set(table.diagnoses)


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("Melanoma", "mel"),
        ("MEL ", "mel"),
        ("malignant  melanoma", "mel"),
        ("Naevus", "nv"),
        ("nevus", "nv"),
        ("NEV", "nv"),  # PAD-UFES-20
        ("seb_keratosis", "seborrheic_keratosis"),
        ("Seborrhoeic keratosis", "seborrheic_keratosis"),
        ("SEK", "seborrheic_keratosis"),
        ("Bowen's disease", "bowen"),
        ("bowens disease", "bowen"),
        ("pso", "psoriasis"),
        ("Atopic eczema", "atopic_dermatitis"),
        ("AD", "atopic_dermatitis"),
        ("eczema", "eczema"),  # not merged into atopic dermatitis
        ("Hives", "urticaria"),
        ("ringworm", "tinea"),
        ("tinea versicolor", "pityriasis_versicolor"),  # not a dermatophyte
        ("wart", "wart"),  # unknown to the table: kept as written (open context)
    ],
)
def test_open_context_gives_the_canonical_code(written: str, code: str) -> None:
    assert canonical(written) == code
    assert LabelSpace().resolve(written) == code


def test_fixed_class_lists_keep_their_own_codes() -> None:
    ham, isic = LabelSpace(HAM), LabelSpace(ISIC2017)
    # ISIC 2017 keeps its names; HAM10000 codes and synonyms map onto them
    assert [isic.resolve(x) for x in ("mel", "NV", "naevus", "SK")] == [
        "melanoma",
        "nevus",
        "nevus",
        "seborrheic_keratosis",
    ]
    # a narrower diagnosis goes to its broader class when the list lacks it
    assert ham.resolve("seborrheic_keratosis") == "bkl"
    assert ham.resolve("solar lentigo") == "bkl"
    assert ham.resolve("actinic keratosis") == "akiec"
    assert ham.resolve("Melanoma") == "mel"
    # ... but never the other way round
    assert isic.resolve("bkl") is None
    assert ham.resolve("psoriasis") is None


def test_unknown_label_error_lists_accepted_codes_and_points_at_the_table() -> None:
    with pytest.raises(ManyErrors) as err:
        map_labels(
            ["mel", "melanom", "psoriasis", "nv"],
            LabelSpace(HAM, name="HAM10000's classes"),
            file="labels.csv",
            column="dx",
        )
    text = str(err.value)
    assert "labels.csv" in text and "column 'dx'" in text
    assert "row 3" in text and "'melanom'" in text and "did you mean 'melanoma'" in text
    assert "row 4" in text and "'psoriasis' is not among HAM10000's classes" in text
    assert str(list(HAM)) in text
    assert "Diagnosis vocabulary" in text and "skinml-data vocabulary" in text
    assert len(err.value.errors) == 2


def test_two_classes_that_are_one_diagnosis_are_refused() -> None:
    with pytest.raises(ConfigError, match="'mel' and 'Melanoma', which are the same diagnosis"):
        LabelSpace(["mel", "nv", "Melanoma"])


def test_malignant_codes_and_display_names() -> None:
    assert malignant_codes() == {"mel", "bcc", "scc", "akiec", "bowen"}
    assert display_name("mel") == "melanoma (mel)"
    assert display_name("psoriasis") == "psoriasis"
    assert display_name("wart") == "wart"


def test_readme_shows_the_table_as_shipped() -> None:
    assert markdown_table() in README.read_text(encoding="utf-8"), (
        "README's 'Diagnosis vocabulary' table is out of date: paste "
        "`python -c 'from skinml.vocabulary import markdown_table; print(markdown_table())'`"
    )
