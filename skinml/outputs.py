"""Check an output file's path before any work is done, so a typo costs seconds, not a run.

``-o results/`` (a folder), ``-o lesion.jpg/out.csv`` (a file where a folder
should be) and read-only locations used to surface as tracebacks after every
input had been scored; here they become one error naming the path and the fix.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from skinml.errors import DataError


def prepare_output_file(path: str | PathLike[str], *, what: str = "output file") -> Path:
    """Create the parent folders of ``path`` and check that the file can be written there.

    Raises:
        DataError: ``path`` is a folder, a parent is a file, or the place is not writable.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(
            f"the {what} is a folder",
            file=p,
            expected="a file name",
            fix=f"give a file name inside it, e.g. {p / 'predictions.csv'}",
        )
    blocker = next((a for a in [p.parent, *p.parent.parents] if a.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise DataError(
            f"cannot create the {what}: {str(blocker)!r} is a file, not a folder",
            file=p,
            fix="choose an output path inside a folder",
        )
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the folder for the {what}: {exc.strerror or exc}",
            file=p,
            fix="choose a folder you can write to",
        ) from exc
    if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise DataError(
            f"the {what} cannot be written (permission denied)",
            file=p,
            fix="choose a folder you can write to",
        )
    return p
