"""Map written labels onto the classes of one context, or say which classes would be accepted.

A context is what a file's labels must fit: a dataset's fixed class list
(HAM10000's seven codes, ISIC 2017's three names), a model file's classes, a
teaching set's classes, a QC vocabulary. Its classes keep their own spelling;
the diagnosis table maps every synonym onto them. A label resolves, in order,
to the class with the same key (``"MEL "`` -> ``mel``), to the class that means
the same diagnosis (``"naevus"`` -> ``nevus`` in ISIC 2017), or to the class of
its broader diagnosis (``"solar lentigo"`` -> ``bkl`` in HAM10000). Anything
else is an error that lists the classes. Without a class list (an open
context) every label the table knows becomes its canonical code and any other
label is kept as written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from os import PathLike

from skinml.errors import ConfigError, DataError, ManyErrors
from skinml.vocabulary.table import canonical, diagnosis_table, label_key

#: Where a message sends the user for the whole table.
TABLE_POINTER = (
    "the diagnosis table (README section 'Diagnosis vocabulary'; `skinml-data vocabulary` "
    "prints it)"
)

#: What to do about a label outside a context (shared by every item of a list).
LABEL_FIX = "write one of the accepted classes or a synonym of one"


class LabelSpace:
    """The labels one context accepts and the class each written form maps to.

    Args:
        classes: the context's classes in their own spelling; None for an open context.
        name: what the classes are called in messages (``"data.classes"``,
            ``"the model's classes"``).

    Raises:
        ConfigError: two classes that are the same diagnosis (``mel`` and ``melanoma``):
            a label could not say which one it means.
    """

    def __init__(self, classes: Iterable[str] | None = None, *, name: str = "the classes") -> None:
        self.classes = None if classes is None else tuple(str(c).strip() for c in classes)
        self.name = name
        self._by_key: dict[str, str] = {}
        self._by_code: dict[str, str] = {}
        table = diagnosis_table()
        for c in self.classes or ():
            dx = table.lookup(c)
            for index, value in ((self._by_key, label_key(c)), (self._by_code, dx and dx.code)):
                if value is None:
                    continue
                other = index.setdefault(value, c)
                if other != c:
                    raise ConfigError(
                        f"{name} {list(self.classes)} list {other!r} and {c!r}, which are the "
                        "same diagnosis",
                        fix="list each diagnosis once",
                    )

    @property
    def is_open(self) -> bool:
        """True when any label is accepted (no class list)."""
        return self.classes is None

    def resolve(self, label: object) -> str | None:
        """The class ``label`` means, or None when it fits none of the classes."""
        if self.classes is None:
            return canonical(label) or None
        key = label_key(label)
        if key in self._by_key:
            return self._by_key[key]
        table = diagnosis_table()
        dx = table.lookup(key)
        if dx is None:
            return None
        for code in table.lineage(dx.code):
            if code in self._by_code:
                return self._by_code[code]
        return None

    def mapping(self, labels: Iterable[object]) -> tuple[dict[object, str], list[object]]:
        """Resolve each distinct label once: ``({label: class}, [labels that fit no class])``."""
        found: dict[object, str] = {}
        unknown: list[object] = []
        for label in dict.fromkeys(labels):
            target = self.resolve(label)
            if target is None:
                unknown.append(label)
            else:
                found[label] = target
        return found, unknown

    def expected(self) -> str:
        """What this context accepts, in words, for error messages."""
        if self.classes is None:
            return "a diagnosis code or synonym"
        return (
            f"one of {self.name} {sorted(self.classes)}, written as the class, its code or a "
            f"synonym (any case); see {TABLE_POINTER}"
        )

    def suggestion(self, label: object) -> str | None:
        """The closest accepted written form, for a did-you-mean hint."""
        table = diagnosis_table()
        candidates = dict.fromkeys(self._by_key)
        for form_key, code in table.forms.items():
            if self.classes is None or any(c in self._by_code for c in table.lineage(code)):
                candidates.setdefault(form_key)
        close = difflib.get_close_matches(label_key(label), list(candidates), n=1, cutoff=0.75)
        return close[0] if close else None


def unknown_label(
    value: object,
    space: LabelSpace,
    *,
    file: str | PathLike[str] | None,
    row: int | str | None,
    column: str,
    what: str = "diagnosis",
) -> DataError:
    """The error for one label outside ``space``: file, row, column, value and what is accepted."""
    dx = diagnosis_table().lookup(value)
    if dx is None:
        problem = f"unknown {what} {value!r}"
    else:
        meaning = "" if label_key(dx.name) == label_key(value) else f" ({dx.name})"
        problem = f"{what} {value!r}{meaning} is not among {space.name}"
    hint = space.suggestion(value)
    return DataError(
        problem,
        file=file,
        row=row,
        column=column,
        expected=space.expected(),
        fix=f"did you mean {hint!r}? Otherwise {LABEL_FIX}" if hint else LABEL_FIX,
    )


def map_labels(
    values: Sequence[object],
    space: LabelSpace,
    *,
    file: str | PathLike[str] | None,
    column: str,
    rows: Sequence[int] | None = None,
    what: str = "diagnosis",
) -> list[str]:
    """Every value mapped onto ``space``, or one error listing each value that fits no class.

    Args:
        values: the labels as read.
        space: the context (see :class:`LabelSpace`).
        file: the file the labels came from.
        column: the column they came from.
        rows: each value's row as the user sees it (default: spreadsheet rows, header = 1).
        what: what a label is called in messages.

    Raises:
        ManyErrors: one :func:`unknown_label` error per offending row.
    """
    found, unknown = space.mapping(values)
    if unknown:
        bad = set(unknown)
        rows = list(rows) if rows is not None else [i + 2 for i in range(len(values))]
        errors = [
            unknown_label(v, space, file=file, row=r, column=column, what=what)
            for v, r in zip(values, rows, strict=True)
            if v in bad
        ]
        where = f"{str(file)!r}" if file is not None else "the data"
        raise ManyErrors(
            f"{where}: {what} labels outside {space.name}",
            errors,  # type: ignore[arg-type]
            fix=LABEL_FIX,
        )
    return [found[v] for v in values]
