"""Re-check an ingested dataset: every file against ``SHA256SUMS``, the manifest against disk.

Run before every use of a dataset (PRODUCT.md: verified on arrival *and*
before use). A file that changed, went missing, or appeared unlisted under
``images/`` is named, and the check fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.errors import DataError
from skinml.ingest.pipeline import CHECKSUMS, IMAGES_DIR, MANIFEST_CSV
from skinml.integrity.checksums import read_checksum_list, verify_files


@dataclass
class DatasetVerification:
    """The outcome of :func:`verify_dataset`; ``ok`` only when nothing is wrong."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.unlisted or self.unexpected)

    def summary(self) -> str:
        if self.ok:
            return f"OK: all {self.checked} files match {CHECKSUMS}"
        lines = [
            f"FAILED: {self.checked} files checked: {len(self.changed)} changed, "
            f"{len(self.missing)} missing, {len(self.unlisted)} in the manifest but not in "
            f"{CHECKSUMS}, {len(self.unexpected)} unexpected files under {IMAGES_DIR}/"
        ]
        lines += [f"  changed: {p}" for p in self.changed]
        lines += [f"  missing: {p}" for p in self.missing]
        lines += [f"  not in {CHECKSUMS}: {p}" for p in self.unlisted]
        lines += [f"  unexpected: {p}" for p in self.unexpected]
        return "\n".join(lines)


def verify_dataset(
    dataset_dir: str | PathLike[str], *, progress: bool = False
) -> DatasetVerification:
    """Check every file listed in ``SHA256SUMS`` and that the manifest is fully covered.

    Raises:
        DataError: when the folder has no ``SHA256SUMS`` (not an ingested dataset).
    """
    root = Path(dataset_dir)
    sums = root / CHECKSUMS
    if not sums.is_file():
        raise DataError(
            f"no {CHECKSUMS} in the dataset folder",
            file=root,
            expected="a folder written by `skinml-ingest run`",
            fix="point at the --out folder of skinml-ingest run",
        )
    expected = read_checksum_list(sums)
    report = verify_files(root, expected, progress=progress)
    result = DatasetVerification(report.checked, list(report.missing), list(report.changed))
    manifest = root / MANIFEST_CSV
    if manifest.is_file() and MANIFEST_CSV not in result.changed:
        images = pd.read_csv(manifest, usecols=["image"], dtype=str)["image"]
        result.unlisted = sorted(set(images) - set(expected))
    folder = root / IMAGES_DIR
    if folder.is_dir():
        on_disk = {p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file()}
        result.unexpected = sorted(on_disk - set(expected))
    return result
