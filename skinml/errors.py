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
    """Several independent problems found in one pass, reported all at once.

    The shared fix is printed once, on its own line, after the list; an item's
    own fix is dropped when it only repeats the shared one (so "Fix:" never
    appears twice in a row).
    """

    def __init__(self, summary: str, errors: list[SkinmlInputError], *, fix: str | None = None):
        self.errors = list(errors)
        n = len(self.errors)
        items = [_without_fix(e, fix) for e in self.errors[:50]]
        shown = "\n".join(f"  - {text}" for text in items)
        more = f"\n  ... and {n - 50} more" if n > 50 else ""
        self.problem = summary
        self.file = None
        self.row = None
        self.column = None
        self.expected = None
        self.fix = fix
        tail = f"\nFix: {fix}" if fix else ""
        noun = "problem" if n == 1 else "problems"
        ValueError.__init__(self, f"{summary} ({n} {noun}):\n{shown}{more}{tail}")


def _without_fix(error: Exception, shared_fix: str | None) -> str:
    if isinstance(error, SkinmlInputError) and error.fix and error.fix == shared_fix:
        return describe(
            error.problem,
            file=error.file,
            row=error.row,
            column=error.column,
            expected=error.expected,
        )
    return str(error)


def with_fix(error: SkinmlInputError, fix: str) -> SkinmlInputError:
    """The same error with another fix, e.g. a command-line flag instead of a Python argument.

    Library code words its fixes for the Python API; a command knows its own
    flags, so it swaps the fix at its boundary rather than printing advice the
    user cannot follow.
    """
    if isinstance(error, ManyErrors):
        items = [
            with_fix(e, fix) if isinstance(e, SkinmlInputError) and e.fix else e
            for e in error.errors
        ]
        return ManyErrors(error.problem, items, fix=fix)  # type: ignore[arg-type]
    return type(error)(
        error.problem,
        file=error.file,
        row=error.row,
        column=error.column,
        expected=error.expected,
        fix=fix,
    )
