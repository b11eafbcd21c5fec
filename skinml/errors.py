"""Domain errors that tell the user where the problem is and what to do next.

Every error skinml raises for bad input subclasses ``ValueError`` (the
scikit-learn convention) and formats the same four facts: which file, which
row or column, what was expected, and the fix.
"""

from __future__ import annotations

from os import PathLike


def describe(
    problem: str,
    *,
    file: str | PathLike[str] | None = None,
    row: int | str | None = None,
    column: str | None = None,
    expected: str | None = None,
    fix: str | None = None,
) -> str:
    """Format a one-paragraph error message from its parts (pure function)."""
    where = []
    if file is not None:
        where.append(f"file {str(file)!r}")
    if row is not None:
        where.append(f"row {row}")
    if column is not None:
        where.append(f"column {column!r}")
    parts = [f"{', '.join(where)}: {problem}" if where else problem]
    if expected:
        parts.append(f"Expected {expected}.")
    if fix:
        parts.append(f"Fix: {fix}")
    return " ".join(parts)


class SkinmlInputError(ValueError):
    """Bad user input: a file, row or column that does not meet a contract."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | PathLike[str] | None = None,
        row: int | str | None = None,
        column: str | None = None,
        expected: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.expected = expected
        self.fix = fix
        super().__init__(
            describe(problem, file=file, row=row, column=column, expected=expected, fix=fix)
        )


class DataError(SkinmlInputError):
    """A dataset, manifest or table violates the data contract."""


class ImageReadError(DataError):
    """One image could not be decoded; carries the path and the reason."""


class ModelFileError(SkinmlInputError):
    """A model file lacks skinml metadata, fails its checksum or has an unknown schema."""


class ConfigError(SkinmlInputError):
    """A configuration value is unknown or inconsistent with the data."""


class ManyErrors(DataError):
    """Several independent problems found in one pass, reported all at once."""

    def __init__(self, summary: str, errors: list[SkinmlInputError], *, fix: str | None = None):
        self.errors = list(errors)
        shown = "\n".join(f"  - {e}" for e in self.errors[:50])
        more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__(f"{summary} ({len(self.errors)} problems):\n{shown}{more}", fix=fix)
