"""Real images from the bundle's split manifest, preprocessed exactly as the predictor does.

Export verification, OOD fitting and quantization calibration all read images
through ``skinml.imaging.preprocess.decode_for_model`` and ``skinml.imaging.preprocess.preprocess``
(the predictor's own functions), so agreement measured here is agreement in the clinic.
A metadata-fusion model also gets each row's patient metadata, encoded by the rules stored
in the model (:mod:`skinml.modelfile.metadata_input`), as the predictor encodes a CSV row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skinml.errors import ImageReadError
from skinml.export.errors import ExportError
from skinml.imaging.preprocess import decode_for_model, preprocess
from skinml.modelfile.metadata import Preprocessing
from skinml.modelfile.metadata_input import METADATA_INPUT_NAME, MetadataEncoding


@dataclass(frozen=True)
class SplitImages:
    """Image paths and labels of one split (a seeded subsample when capped).

    ``metadata`` holds the encoded patient metadata of each row (N, F) for a fusion model.
    """

    split: str
    paths: list[Path]
    labels: list[str]
    n_in_split: int
    manifest: Path
    metadata: np.ndarray | None = None


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
    manifest_csv: str | PathLike[str],
    split: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    encoding: MetadataEncoding | None = None,
    classes: Sequence[str] | None = None,
) -> SplitImages:
    """Paths and labels of the rows whose ``split`` is ``split`` (seeded subsample to ``limit``).

    With ``encoding`` (a fusion model), each row's metadata columns are encoded too.
    With ``classes`` (the model's), labels are read as those classes (a synonym in a
    hand-made manifest is mapped, see :func:`skinml.data.manifest.conform_labels`).

    Raises:
        ExportError: when the manifest has no rows in that split, or lacks a metadata column.
        ManyErrors: metadata cells that cannot be encoded (column and row named).
    """
    from skinml.data.manifest import read_manifest

    manifest = read_manifest(manifest_csv, classes=classes)
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
    metadata = None if encoding is None else _encode(frame, encoding, manifest_csv)
    return SplitImages(
        split, paths, frame["label"].astype(str).tolist(), n, Path(manifest_csv), metadata
    )


def _encode(frame: Any, encoding: MetadataEncoding, manifest_csv: Any) -> np.ndarray:
    from skinml.errors import ManyErrors

    absent = [c for c in encoding.column_names if c not in frame.columns]
    if absent:
        raise ExportError(
            f"the model needs the metadata columns {absent}, which the manifest lacks; its "
            f"columns are {list(frame.columns)}",
            file=manifest_csv,
            fix="pass the split manifest written by skinml-train (--manifest)",
        )
    cols = list(encoding.column_names)
    cells = frame[cols].astype(object).where(frame[cols].notna(), None)
    encoded = encoding.encode_rows(cells.to_dict("records"))
    if encoded.errors:
        rows = frame.index.to_numpy()  # the manifest's own rows (header = row 1)
        problems = [
            e.located(file=str(manifest_csv), row=int(rows[i]) + 2) for i, e in encoded.errors
        ]
        raise ManyErrors("metadata cells cannot be encoded", problems)
    return encoded.features


def iter_batches(
    images: SplitImages, prep: Preprocessing, batch_size: int = 32
) -> Iterator[tuple[np.ndarray, list[str], list[Path]]]:
    """Yield (NCHW float32 batch, labels, paths); unreadable images are skipped (counted by caller).

    Raises:
        ExportError: when not a single image of the split can be read.
    """
    for feeds, labels, paths in iter_feeds(images, prep, batch_size):
        yield feeds["image"], labels, paths


def iter_feeds(
    images: SplitImages, prep: Preprocessing, batch_size: int = 32
) -> Iterator[tuple[dict[str, np.ndarray], list[str], list[Path]]]:
    """Yield (graph feeds, labels, paths): ``{"image": NCHW}`` plus ``"metadata"`` when known.

    Unreadable images are skipped together with their metadata row (counted by the caller).

    Raises:
        ExportError: when not a single image of the split can be read.
    """
    xs: list[np.ndarray] = []
    ms: list[np.ndarray] = []
    labels: list[str] = []
    paths: list[Path] = []
    n_ok = 0
    failures: list[str] = []

    def feeds() -> dict[str, np.ndarray]:
        out = {"image": np.stack(xs)}
        if images.metadata is not None:
            out[METADATA_INPUT_NAME] = np.stack(ms).astype(np.float32, copy=False)
        return out

    for i, (path, label) in enumerate(zip(images.paths, images.labels, strict=True)):
        try:
            img = decode_for_model(path, prep).image
        except ImageReadError as exc:
            failures.append(str(exc))
            continue
        xs.append(preprocess(img, prep))
        if images.metadata is not None:
            ms.append(images.metadata[i])
        labels.append(label)
        paths.append(path)
        n_ok += 1
        if len(xs) == batch_size:
            yield feeds(), labels, paths
            xs, ms, labels, paths = [], [], [], []
    if xs:
        yield feeds(), labels, paths
    if n_ok == 0:
        raise ExportError(
            f"none of the {len(images.paths)} {images.split!r} images could be read "
            f"(first problem: {failures[0] if failures else 'none listed'})",
            file=images.manifest,
            fix="check that the image paths in the manifest are relative to the CSV",
        )
