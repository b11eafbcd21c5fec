"""The diagnosis table: canonical codes, display names, synonyms, malignancy, broader class.

One table (``diagnoses.tsv``, shipped as package data) is the only place skinml
learns that "Melanoma", "MEL " and "malignant melanoma" are ``mel``. Keeping it
as data rather than code lets a reader check it at a glance and lets the tests
prove that no written form names two diagnoses. The module uses the standard
library only, so the light predictor install can import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from skinml.errors import DataError

#: The table's file inside this package.
TABLE_FILE = "diagnoses.tsv"
TABLE_COLUMNS = ("code", "name", "malignant", "parent", "synonyms")
_NO_PARENT = "-"
_YES_NO = {"yes": True, "no": False}


@dataclass(frozen=True)
class Diagnosis:
    """One row of the table.

    Attributes:
        code: the canonical code (``mel``, ``psoriasis``).
        name: the display name (``melanoma``).
        malignant: the default for malignancy indicators.
        parent: the broader class it is counted under when a class list lacks it.
        synonyms: other written forms (the code and the name are always accepted too).
    """

    code: str
    name: str
    malignant: bool
    parent: str | None
    synonyms: tuple[str, ...]

    @property
    def forms(self) -> tuple[str, ...]:
        """Every written form that means this diagnosis: code, name, synonyms."""
        return (self.code, self.name, *self.synonyms)


def label_key(text: object) -> str:
    """The form labels are compared in: case-folded, ``_``/``-`` as spaces, no apostrophes.

    ``"Bowen's_disease "`` and ``"bowens disease"`` share a key, so the table
    needs one row per diagnosis, not one per spelling of it.
    """
    t = str(text).casefold().replace("_", " ").replace("-", " ")
    for mark in ("'", "\u2019", "`"):
        t = t.replace(mark, "")
    return " ".join(t.split())


@dataclass(frozen=True)
class DiagnosisTable:
    """The parsed table: diagnoses by code and every written form's key -> code."""

    diagnoses: dict[str, Diagnosis]
    forms: dict[str, str]
    source: str

    def __iter__(self) -> Iterator[Diagnosis]:
        return iter(self.diagnoses.values())

    def lookup(self, label: object) -> Diagnosis | None:
        """The diagnosis a written label means, or None when the table does not know it."""
        code = self.forms.get(label_key(label))
        return None if code is None else self.diagnoses[code]

    def lineage(self, code: str) -> list[str]:
        """``code`` followed by its broader classes (``seborrheic_keratosis``, ``bkl``)."""
        out = [code]
        while (parent := self.diagnoses[out[-1]].parent) is not None:
            out.append(parent)
        return out

    def malignant_codes(self) -> frozenset[str]:
        """Codes whose ``malignant`` column says yes."""
        return frozenset(d.code for d in self if d.malignant)


def parse_table(text: str, *, source: str = TABLE_FILE) -> DiagnosisTable:
    """Parse the TSV text of a diagnosis table (pure function; ``#`` lines are comments).

    Raises:
        DataError: a malformed row, a code listed twice, an unknown or circular
            parent, or a written form that would name two codes.
    """
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line and line[0] != "#"]
    if not lines or tuple(lines[0][1].split("\t")) != TABLE_COLUMNS:
        raise DataError(
            "the diagnosis table has no header row",
            file=source,
            expected="a tab-separated header " + " ".join(TABLE_COLUMNS),
        )
    diagnoses: dict[str, Diagnosis] = {}
    forms: dict[str, str] = {}
    for n, line in lines[1:]:
        cells = line.split("\t")
        cells += [""] * (len(TABLE_COLUMNS) - len(cells) == 1)  # no synonyms: no trailing tab
        if len(cells) != len(TABLE_COLUMNS) or cells[2] not in _YES_NO:
            raise DataError(
                "malformed row",
                file=source,
                row=n,
                expected="code, name, yes/no, parent or '-', synonyms separated by ' | '",
            )
        code, name, malignant, parent, synonyms = cells
        if code in diagnoses or code != label_key(code).replace(" ", "_"):
            raise DataError(
                f"code {code!r} is listed twice or is not lower-case snake_case",
                file=source,
                row=n,
                column="code",
            )
        dx = Diagnosis(
            code=code,
            name=name,
            malignant=_YES_NO[malignant],
            parent=None if parent == _NO_PARENT else parent,
            synonyms=tuple(s.strip() for s in synonyms.split("|") if s.strip()),
        )
        for form in dx.forms:
            other = forms.setdefault(label_key(form), code)
            if other != code:
                raise DataError(
                    f"the written form {form!r} would name both {other!r} and {code!r}",
                    file=source,
                    row=n,
                    fix="keep the form in one row only",
                )
        diagnoses[code] = dx
    table = DiagnosisTable(diagnoses, forms, source)
    for dx in table:
        if dx.parent is not None and dx.parent not in diagnoses:
            raise DataError(f"{dx.code!r} has the unknown parent {dx.parent!r}", file=source)
        seen = {dx.code}
        parent = dx.parent
        while parent is not None:
            if parent in seen:
                raise DataError(f"the parents of {dx.code!r} form a cycle", file=source)
            seen.add(parent)
            parent = diagnoses[parent].parent
    return table


@cache
def diagnosis_table() -> DiagnosisTable:
    """The table shipped with skinml (read once, on first use)."""
    resource = files("skinml.vocabulary").joinpath(TABLE_FILE)
    text = resource.read_text(encoding="utf-8")
    return parse_table(text, source=f"skinml/vocabulary/{TABLE_FILE}")


def lookup(label: object) -> Diagnosis | None:
    """The diagnosis a written label means (any case or listed synonym), or None."""
    return diagnosis_table().lookup(label)


def canonical(label: object) -> str:
    """The canonical code of ``label``; a label the table does not know comes back stripped.

    This is the rule where no class list applies (an open vocabulary: a folder
    tree, QC records, an ingest delivery): the same diagnosis always gets the
    same code, and a centre's own classes are kept as written.
    """
    dx = lookup(label)
    return dx.code if dx is not None else str(label).strip()


def display_name(code: str) -> str:
    """``"mel"`` -> ``"melanoma (mel)"``; a label the table does not know is shown as it is."""
    dx = lookup(code)
    if dx is None:
        return code
    return code if label_key(dx.name) == label_key(code) else f"{dx.name} ({code})"


def malignant_codes() -> frozenset[str]:
    """Canonical codes the table marks malignant (skinml's default malignant set)."""
    return diagnosis_table().malignant_codes()


def markdown_table() -> str:
    """The table as Markdown (the README's "Diagnosis vocabulary" section is this text)."""
    rows = [
        "| code | name | malignant | counted under | also written as |",
        "|---|---|---|---|---|",
    ]
    for dx in diagnosis_table():
        rows.append(
            f"| `{dx.code}` | {dx.name} | {'yes' if dx.malignant else 'no'} | "
            f"{'`' + dx.parent + '`' if dx.parent else ''} | {', '.join(dx.synonyms)} |"
        )
    return "\n".join(rows)
