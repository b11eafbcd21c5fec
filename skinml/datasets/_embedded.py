"""Where the embedded sample data lives inside the installed package, and its checksums."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from skinml.errors import DataError
from skinml.integrity.checksums import VerificationReport, read_checksum_list, verify_files

SUMS = "SHA256SUMS"


def embedded_dir() -> Path:
    """The folder holding the embedded datasets (``skinml/datasets/embedded``).

    Raises:
        DataError: the package was installed without its data files.
    """
    path = Path(str(files("skinml.datasets") / "embedded"))
    if not (path / SUMS).is_file():
        raise DataError(
            "skinml's embedded sample data is missing",
            file=path,
            fix="reinstall skinml (package data 'embedded/**/*'), or regenerate it with "
            "`python scripts/make_embedded_data.py` in a source checkout",
        )
    return path


def verify_embedded(*, progress: bool = False) -> VerificationReport:
    """Check every embedded file against ``SHA256SUMS``; the report names any changed file."""
    root = embedded_dir()
    return verify_files(root, read_checksum_list(root / SUMS), progress=progress)
