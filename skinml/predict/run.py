"""Stream predictions for many inputs into ``predictions.csv`` (one row per input, always).

Rows are written as they are produced and flushed after every batch, so memory
stays flat over any number of images and an interrupted run keeps what it did.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from skinml.outputs import prepare_output_file
from skinml.predict.inputs import expand_inputs
from skinml.predict.predictor import ImagePredictor


@dataclass
class PredictionSummary:
    """What a prediction run produced, for the console and for callers."""

    output_csv: Path
    n_rows: int = 0
    n_ok: int = 0
    n_error: int = 0
    n_malignant_flag: int = 0
    n_ood_flag: int = 0
    n_quality_flag: int = 0
    skipped: list[Path] = field(default_factory=list)
    heatmap_dir: Path | None = None
    checksum_verified: bool | None = None
    model_warnings: tuple[str, ...] = ()
    heatmap_note: str | None = None


def format_value(value: Any) -> str:
    """CSV text for a row value: floats with 6 decimals, everything else as str."""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def predict_to_csv(
    model_path: str | PathLike[str],
    inputs: str | PathLike[str] | Iterable[str | PathLike[str]],
    output_csv: str | PathLike[str],
    *,
    batch_size: int = 32,
    threads: int | None = None,
    tta: bool = False,
    heatmap_dir: str | PathLike[str] | None = None,
    progress: bool = True,
    workers: int | None = None,
    predictor: ImagePredictor | None = None,
) -> PredictionSummary:
    """Score every input and write ``output_csv``; see :func:`run_predictions`.

    Returns:
        A :class:`PredictionSummary` with row counts (ok, error, flagged).
    """
    out = prepare_output_file(output_csv, what="predictions CSV")
    pred = predictor or ImagePredictor(model_path, threads=threads, tta=tta, workers=workers)
    expanded = expand_inputs(inputs, metadata_columns=pred.metadata_columns)
    summary = PredictionSummary(
        output_csv=out,
        skipped=expanded.skipped,
        heatmap_dir=None if heatmap_dir is None else Path(heatmap_dir),
        checksum_verified=pred.checksum_verified,
        model_warnings=pred.warnings,
        heatmap_note=pred.heatmap_note,
    )
    rows = pred.iter_rows(expanded.items, batch_size=batch_size, heatmap_dir=heatmap_dir)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, total=len(expanded.items), desc="predicting", unit="img", file=sys.stderr)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=pred.columns)
        writer.writeheader()
        for i, row in enumerate(rows, start=1):
            writer.writerow({k: format_value(v) for k, v in row.items()})
            summary.n_rows += 1
            if row["status"] == "ok":
                summary.n_ok += 1
                summary.n_malignant_flag += row["malignant_flag"] == 1
                summary.n_ood_flag += row["ood_flag"] == 1
                summary.n_quality_flag += bool(row["quality_flags"])
            else:
                summary.n_error += 1
            if i % batch_size == 0:
                fh.flush()
    return summary


def run_predictions(
    model_path: str | PathLike[str],
    inputs: str | PathLike[str] | Iterable[str | PathLike[str]],
    output_csv: str | PathLike[str],
    *,
    batch_size: int = 32,
    threads: int | None = None,
    tta: bool = False,
    heatmap_dir: str | PathLike[str] | None = None,
    progress: bool = True,
) -> Path:
    """Score images with a skinml ONNX model and write one CSV row per input.

    Args:
        model_path: the ``.onnx`` file from ``skinml-export`` (its ``.sha256``
            sidecar, when present, is checked first).
        inputs: an image, a folder (searched recursively), a CSV with an
            ``image``/``path`` column (paths relative to the CSV), or a list of paths.
            A model with a patient-metadata input needs a CSV that also has its
            metadata columns (``ImagePredictor.metadata_columns``).
        output_csv: where to write the predictions.
        batch_size: images per onnxruntime call.
        threads: onnxruntime intra-op threads (None: all cores).
        tta: average predictions over horizontal/vertical flips.
        heatmap_dir: write a class-activation heatmap PNG per image here.
        progress: show a progress bar on stderr.

    Returns:
        The path of the written CSV.

    Raises:
        ModelFileError: the model file is missing, damaged, or lacks skinml metadata.
        DataError: the input does not exist, a CSV names no image column, or the model
            needs metadata columns the input lacks.
    """
    return predict_to_csv(
        model_path,
        inputs,
        output_csv,
        batch_size=batch_size,
        threads=threads,
        tta=tta,
        heatmap_dir=heatmap_dir,
        progress=progress,
    ).output_csv
