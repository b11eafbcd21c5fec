"""Real images from the bundle's split manifest, preprocessed exactly as the predictor does.

Export verification, OOD fitting and quantization calibration all read images
through ``skinml.imaging.read.read_image`` and ``skinml.imaging.preprocess.preprocess``
(the predictor's own functions), so agreement measured here is agreement in the clinic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from skinml.errors import ImageReadError
from skinml.export.errors import ExportError
from skinml.imaging.preprocess import preprocess
from skinml.imaging.read import read_image
from skinml.modelfile.metadata import Preprocessing


@dataclass(frozen=True)
class SplitImages:
    """Image paths and labels of one split (a seeded subsample when capped)."""

    split: str
    paths: list[Path]
    labels: list[str]
    n_in_split: int
    manifest: Path


def resolve_manifest(
    split_manifest: str | PathLike[str], bundle_path: str | PathLike[str] | None = None
) -> Path:
    """Find the split manifest: as given, else relative to the bundle's folder.

    Raises:
        ExportError: when it cannot be found (export cannot verify without real images).
    """
    p = Path(split_manifest)
    candidates = [p]
    if not p.is_absolute() and bundle_path is not None:
        candidates.append(Path(bundle_path).parent / p)
    for c in candidates:
        if c.is_file():
            return c
    raise ExportError(
        "the bundle's split manifest is not there, so the export cannot be verified on real "
        "validation images",
        file=p,
        fix="pass --manifest PATH (CLI) or validation_manifest= (API) pointing at the manifest "
        "CSV with a 'split' column that the model was trained with",
    )


def split_images(
    manifest_csv: str | PathLike[str], split: str, *, limit: int | None = None, seed: int = 0
) -> SplitImages:
    """Paths and labels of the rows whose ``split`` is ``split`` (seeded subsample to ``limit``).

    Raises:
        ExportError: when the manifest has no rows in that split.
    """
    from skinml.data.manifest import read_manifest

    manifest = read_manifest(manifest_csv)
    frame = manifest.frame[manifest.frame["split"] == split]
    n = len(frame)
    if n == 0:
        raise ExportError(
            f"the manifest has no rows with split == {split!r}",
            file=manifest_csv,
            column="split",
            fix="export needs validation (and, to quantize, training) images; use the "
            "manifest written by skinml-train",
        )
    if limit is not None and n > limit:
        rng = np.random.default_rng(seed)
        frame = frame.iloc[np.sort(rng.choice(n, size=limit, replace=False))]
    paths = [manifest.root / p for p in frame["image"]]
    return SplitImages(split, paths, frame["label"].astype(str).tolist(), n, Path(manifest_csv))


def iter_batches(
    images: SplitImages, prep: Preprocessing, batch_size: int = 32
) -> Iterator[tuple[np.ndarray, list[str], list[Path]]]:
    """Yield (NCHW float32 batch, labels, paths); unreadable images are skipped (counted by caller).

    Raises:
        ExportError: when not a single image of the split can be read.
    """
    xs: list[np.ndarray] = []
    labels: list[str] = []
    paths: list[Path] = []
    n_ok = 0
    failures: list[str] = []
    for path, label in zip(images.paths, images.labels, strict=True):
        try:
            img = read_image(path)
        except ImageReadError as exc:
            failures.append(str(exc))
            continue
        xs.append(preprocess(img, prep))
        labels.append(label)
        paths.append(path)
        n_ok += 1
        if len(xs) == batch_size:
            yield np.stack(xs), labels, paths
            xs, labels, paths = [], [], []
    if xs:
        yield np.stack(xs), labels, paths
    if n_ok == 0:
        raise ExportError(
            f"none of the {len(images.paths)} {images.split!r} images could be read "
            f"(first problem: {failures[0] if failures else 'none listed'})",
            file=images.manifest,
            fix="check that the image paths in the manifest are relative to the CSV",
        )
