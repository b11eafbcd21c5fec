"""The one place where every console script turns bad input into a message and exit code 2.

Each ``skinml-*`` command wraps its body in :func:`run_command`. Bad input is
whatever the user can fix: a domain error (:class:`~skinml.errors.SkinmlInputError`,
also when Hydra's ``instantiate`` has wrapped it), a path that cannot be read
or written (``OSError`` carrying a file name) and a text file that is not
UTF-8. These print one paragraph, what / where / the fix, and no traceback.
Anything else is a bug in skinml and keeps its traceback, so that it is
reported rather than hidden.

The module imports only the standard library and :mod:`skinml.errors`, so the
clinician's light install (``skinml-predict``) can use it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from skinml.errors import ManyErrors, SkinmlInputError, describe, with_fix

#: Exit status for input the user must fix (argparse uses the same code for bad flags).
EXIT_BAD_INPUT = 2


def domain_error(exc: BaseException) -> SkinmlInputError | None:
    """The skinml error behind ``exc``: itself, or the first one in its cause/context chain.

    Hydra's ``instantiate`` and thread pools re-raise errors wrapped in their own
    exception types; the user needs the inner message, not the wrapper's traceback.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SkinmlInputError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def explain(exc: BaseException) -> str | None:
    """One-paragraph message for bad input, or None when ``exc`` is a bug to be shown as one."""
    found = domain_error(exc)
    if found is not None:
        return str(found)
    if isinstance(exc, UnicodeDecodeError):
        return describe(
            f"a text file is not UTF-8 ({exc.reason} at byte {exc.start})",
            expected="UTF-8 text (CSV, YAML, VCF)",
            fix="re-save the file as UTF-8 (in Excel: 'CSV UTF-8'; or iconv -f latin1 -t utf-8)",
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        kind = {
            IsADirectoryError: ("is a folder", "give a file name, e.g. FOLDER/out.csv"),
            NotADirectoryError: ("has a file where a folder is expected", "choose another path"),
            FileNotFoundError: ("does not exist", "check the path"),
            FileExistsError: ("already exists as a file", "choose another path"),
            PermissionError: ("cannot be accessed (permission denied)", "check the permissions"),
        }.get(type(exc), (exc.strerror or "cannot be used", "check the path and the disk"))
        return describe(kind[0], file=exc.filename, fix=kind[1])
    return None


def in_command_terms(error: SkinmlInputError, fixes: Mapping[str, str]) -> SkinmlInputError:
    """``error`` with a fix worded for the Python API replaced by the command's own advice.

    Library errors name function arguments (``on_missing='exclude'``); a command
    knows its flags or config keys. ``fixes`` maps a marker found in a fix (the
    argument's name) to the advice the command gives instead.
    """
    items = error.errors if isinstance(error, ManyErrors) else [error]
    text = " ".join(getattr(e, "fix", None) or "" for e in items) + (error.fix or "")
    for marker, fix in fixes.items():
        if marker in text:
            return with_fix(error, fix)
    return error


def run_command(
    prog: str, body: Callable[[], int | None], *, fixes: Mapping[str, str] | None = None
) -> int:
    """Run a command's body; bad input prints ``prog: error: ...`` and returns 2.

    Args:
        prog: the command name shown in front of the message (e.g. ``"skinml-predict"``).
        body: the command; returns its exit status (None counts as 0).
        fixes: Python-API fixes to say in the command's terms (see :func:`in_command_terms`).

    Returns:
        The body's exit status, or :data:`EXIT_BAD_INPUT` for bad input.
    """
    try:
        return int(body() or 0)
    except Exception as exc:  # bad input of any wrapper type becomes a message; bugs re-raise
        found = domain_error(exc)
        message = str(in_command_terms(found, fixes or {})) if found else explain(exc)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
