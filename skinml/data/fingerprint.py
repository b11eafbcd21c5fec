"""Per-file checksums and the dataset fingerprint: exactly which data a model saw.

The fingerprint is a SHA-256 over the canonical manifest CSV (rows sorted by
image path, columns in a fixed order, ``\\n`` line ends) followed by every
image's SHA-256. Relabelling a row, moving an image to another split or
changing one pixel of one file changes it; renaming the folder the dataset
lives in does not. It is recorded with every training run and in the model file.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

from skinml.data.manifest import MANIFEST_COLUMNS, Manifest
from skinml.errors import ConfigError, DataError, ManyErrors
from skinml.integrity.checksums import (
    VerificationReport,
    file_digest,
    read_checksum_list,
    verify_files,
)

FINGERPRINT_VERSION = b"skinml-dataset-fingerprint-v1\n"


def canonical_manifest_csv(manifest: Manifest) -> bytes:
    """The manifest as canonical CSV bytes (sorted rows, fixed column order, LF ends)."""
    df = manifest.frame
    extra = sorted(c for c in df.columns if c not in MANIFEST_COLUMNS)
    df = df[[*MANIFEST_COLUMNS, *extra]].sort_values("image", kind="stable")
    text = df.to_csv(index=False, lineterminator="\n", na_rep="")
    return text.encode("utf-8")


def file_checksums(
    manifest: Manifest, *, algorithm: str = "sha256", progress: bool = False
) -> dict[str, str]:
    """``{image path as in the manifest: hex digest}`` for every image.

    Raises:
        ManyErrors: listing every image file that does not exist.
    """
    items = list(zip(manifest.frame["image"], manifest.paths(), strict=True))
    missing = [
        DataError("image file does not exist", file=path, row=i + 2, column="image")
        for i, (_, path) in enumerate(items)
        if not path.is_file()
    ]
    if missing:
        raise ManyErrors(f"cannot checksum dataset {manifest.name!r}", missing)  # type: ignore[arg-type]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=f"{algorithm} of {manifest.name}", unit="file")
    return {rel: file_digest(path, algorithm) for rel, path in items}


def dataset_fingerprint(
    manifest: Manifest, checksums: Mapping[str, str] | None = None, *, progress: bool = False
) -> str:
    """SHA-256 identifying the manifest *and* the bytes of every image it lists.

    Args:
        manifest: the dataset as trained on (after splits are assigned).
        checksums: ``{image: sha256}`` already computed (e.g. from ``SHA256SUMS``);
            computed from the files when omitted.
        progress: progress bar while hashing files.

    Returns:
        64 hex characters.

    Raises:
        ConfigError: a given checksum is not a SHA-256 (MD5 lists would give a
            different fingerprint for the same data).
        DataError: an image has no checksum, or its file is missing.
    """
    if checksums is None:
        checksums = file_checksums(manifest, progress=progress)
    images = sorted(manifest.frame["image"])
    absent = [i for i in images if i not in checksums]
    if absent:
        raise DataError(
            f"{len(absent)} images have no checksum (e.g. {absent[:3]})",
            file=manifest.name,
            fix="omit checksums= to compute them from the files",
        )
    bad = [i for i in images if len(checksums[i]) != 64]
    if bad:
        raise ConfigError(
            f"checksums for {len(bad)} images are not SHA-256 (e.g. {bad[0]!r})",
            expected="64-hex-digit SHA-256 digests",
            fix="omit checksums= to compute SHA-256 from the files",
        )
    h = hashlib.sha256(FINGERPRINT_VERSION)
    h.update(canonical_manifest_csv(manifest))
    for image in images:
        h.update(f"{checksums[image].lower()}  {image}\n".encode())
    return h.hexdigest()


def checksums_for_manifest(
    manifest: Manifest, checksum_file: str | PathLike[str]
) -> tuple[dict[str, str], list[str]]:
    """Look up each manifest image in a ``md5sum``/``sha256sum`` list.

    Paths in the list are relative to the list's folder; manifest paths to the
    manifest root; both are resolved before matching.

    Returns:
        ``({image: digest}, [images the list does not cover])``.
    """
    checksum_file = Path(checksum_file)
    listed = read_checksum_list(checksum_file)
    base = checksum_file.parent.resolve()
    by_abs = {str((base / rel).resolve()): digest for rel, digest in listed.items()}
    found: dict[str, str] = {}
    uncovered: list[str] = []
    for rel, path in zip(manifest.frame["image"], manifest.paths(), strict=True):
        digest = by_abs.get(str(path.resolve()))
        if digest is None:
            uncovered.append(rel)
        else:
            found[rel] = digest
    return found, uncovered


def verify_checksum_list(
    checksum_file: str | PathLike[str],
    *,
    sample: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> VerificationReport:
    """Check files against a ``MD5SUMS``/``SHA256SUMS`` list next to them.

    Args:
        checksum_file: the list; paths in it are relative to its folder.
        sample: check only this many randomly chosen files (a quick spot check).
        seed: seed for the sample.
        progress: progress bar.

    Returns:
        A report naming every missing or changed file.
    """
    checksum_file = Path(checksum_file)
    if not checksum_file.is_file():
        raise DataError("checksum list does not exist", file=checksum_file, fix="check the path")
    expected = read_checksum_list(checksum_file)
    if sample is not None and sample < len(expected):
        keys = random.Random(seed).sample(sorted(expected), sample)
        expected = {k: expected[k] for k in keys}
    return verify_files(checksum_file.parent, expected, progress=progress)
