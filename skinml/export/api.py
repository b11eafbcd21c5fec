"""``export_bundle``: a trained bundle -> one verified, self-contained, documented ONNX file.

Order matters: the graph is exported to a temporary file, verified against
PyTorch on real validation images, and only then written to the requested path
with its metadata, SHA-256 sidecar and model card. A failed verification leaves
nothing behind that a clinician could pick up by mistake.

When the run fitted its calibration and thresholds on test-time-augmented logits, the
same views are built into the graph (see :mod:`skinml.export.graph`) and recorded in
``calibration.tta_views``: a clinician running ``skinml-predict`` with default options
gets the run's probabilities, and the verification compares onnxruntime with the same
TTA in PyTorch. Building TTA into the file, rather than leaving it to a predictor option,
is the one design in which nobody can forget it or apply it twice.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

from skinml.errors import ConfigError
from skinml.explain.resolution import coarse_cam_note
from skinml.export.card import write_card
from skinml.export.errors import ExportError, QuantizationRefusedError
from skinml.export.graph import INPUT_NAME, CamSupport, cam_support, exportable
from skinml.export.graph import export_graph as _export_graph
from skinml.export.images import resolve_manifest, split_images
from skinml.export.onnx_meta import embed_metadata
from skinml.export.quantize import (
    DEFAULT_MAX_ACCURACY_LOSS,
    Int8Recipe,
    QuantizationReport,
    build_report,
    compare_int8,
    quantize_int8,
)
from skinml.export.verify import PROBABILITY_TOLERANCE, VerificationReport, verify_against_torch
from skinml.integrity.checksums import sha256_file
from skinml.modelfile.metadata import SCHEMA_VERSION, ModelMetadata
from skinml.modelfile.metadata_input import METADATA_INPUT_NAME, MetadataEncoding
from skinml.modelfile.onnx_io import write_sidecar
from skinml.modelfile.tta import calibration_tta_views
from skinml.predict.scores import fit_ood_threshold
from skinml.training.bundle import ModelBundle

log = logging.getLogger(__name__)

OOD_DEFINITION = "-logsumexp(logits)"


@dataclass
class ExportResult:
    """Everything ``export_bundle`` wrote and measured."""

    onnx_path: Path
    sidecar_path: Path
    card_path: Path
    sha256: str
    metadata: ModelMetadata
    verification: VerificationReport
    exporter: str
    int8_path: Path | None = None
    int8_sidecar_path: Path | None = None
    int8_card_path: Path | None = None
    int8_metadata: ModelMetadata | None = None
    quantization: QuantizationReport | None = None

    @property
    def card_html_path(self) -> Path:
        """The HTML model card written beside the Markdown one."""
        return self.card_path.with_suffix(".html")


def tensor_docs(
    prep: Any,
    classes: tuple[str, ...],
    cam: CamSupport,
    temperature: float,
    encoding: MetadataEncoding | None = None,
    tta_views: tuple[str, ...] = (),
):
    """The documented graph inputs and outputs (stored as ``metadata.inputs/outputs``)."""
    h, w = prep.input_size
    k = len(classes)
    tta = (
        f"the mean over the test-time flip views {', '.join(tta_views)} (computed in the "
        "graph, as in training) of the "
        if tta_views
        else ""
    )
    inputs = {
        INPUT_NAME: f"float32 [batch, 3, {h}, {w}] RGB image: decoded, EXIF-upright, resized "
        f"per preprocessing.resize ({prep.resize}, {prep.interpolation}) to {h}x{w}, multiplied "
        "by preprocessing.scale, minus preprocessing.mean, divided by preprocessing.std (NCHW)"
    }
    if encoding is not None:
        inputs[METADATA_INPUT_NAME] = (
            f"float32 [batch, {encoding.n_features}] patient metadata from the columns "
            f"{list(encoding.column_names)}, encoded by the rules in extra.metadata_input "
            f"(fitted on the training split), features in this order: "
            f"{', '.join(encoding.feature_names)}"
        )
    outputs = {
        "logits": f"float32 [batch, {k}] {tta}raw class scores in metadata.classes order, "
        "before calibration (used for the energy OOD score)",
        "probabilities": f"float32 [batch, {k}] calibrated class probabilities = "
        f"softmax(logits / {temperature:.6g}); temperature already applied in the graph",
    }
    if cam.available:
        c, fh, fw = cam.feature_shape or (0, 0, 0)
        outputs["cam"] = (
            f"float32 [batch, {k}, {fh}, {fw}] class-activation map per class: W_k·F + b_k at "
            f"each position of the last feature map F ({c} channels)"
            + (" of each flip view, flipped back onto the input and averaged" if tta_views else "")
            + (
                " plus the per-image constant the metadata adds to logit k"
                if encoding is not None
                else ""
            )
            + "; its spatial mean equals logits[:, k]. Keep positive values, scale to [0, 1] "
            "and upsample onto the model's input view for a heatmap"
        )
    return inputs, outputs


def export_bundle(
    bundle: ModelBundle | str | PathLike[str],
    output_path: str | PathLike[str],
    *,
    quantize: str | None = None,
    max_accuracy_loss: float = DEFAULT_MAX_ACCURACY_LOSS,
    calibration_images: int = 200,
    int8_recipe: Int8Recipe | None = None,
    opset: int | None = None,
    validation_manifest: str | PathLike[str] | None = None,
    max_validation_images: int | None = 2000,
    ood_percentile: float = 95.0,
    tolerance: float = PROBABILITY_TOLERANCE,
    mlflow_run_id: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
) -> ExportResult:
    """Export a trained bundle to a verified skinml model file (and optionally int8).

    Args:
        bundle: a :class:`ModelBundle`, a bundle file, or a ``skinml-train`` run directory.
        output_path: the ``.onnx`` file to write; the sidecar ``.onnx.sha256`` and the
            card ``.card.md`` go beside it.
        quantize: ``"int8"`` to also write ``<stem>.int8.onnx`` (static QDQ quantization).
        max_accuracy_loss: refuse int8 when validation accuracy drops by more than this
            fraction (0.005 = half a point).
        calibration_images: training-split images used to calibrate int8 ranges.
        int8_recipe: how int8 ranges are calibrated and what stays in float (None: the
            default :class:`~skinml.export.quantize.Int8Recipe`).
        opset: ONNX opset (None: the exporter's default).
        validation_manifest: override the bundle's split manifest (e.g. data moved).
        max_validation_images: cap on validation images (seeded subsample); None for all.
        ood_percentile: percentile of validation energy scores used as the OOD threshold.
        tolerance: max allowed |p_onnx - p_torch|.
        mlflow_run_id: recorded in the provenance when the bundle came from MLflow.
        seed: seed for subsampling validation/calibration images.
        batch_size: images per inference batch during verification.

    Returns:
        An :class:`ExportResult`.

    Raises:
        ExportVerificationError: onnxruntime and PyTorch disagree (nothing is written).
        QuantizationRefusedError: int8 lost too much accuracy (fp32 files are written and
            valid; ``exc.result`` holds their :class:`ExportResult`).
        ExportError / ModelFileError: unusable bundle, missing manifest or images.
    """
    bundle_path = None
    if not isinstance(bundle, ModelBundle):
        bundle_path = Path(bundle)
        bundle = ModelBundle.load(bundle_path)
    if quantize not in (None, "int8"):
        raise ConfigError(f"unknown quantization {quantize!r}", expected="None or 'int8'")
    meta = bundle.metadata
    if meta.task != "image_classification" or meta.preprocessing is None:
        raise ExportError(f"export_bundle exports image classifiers, not {meta.task!r} models")
    prep = meta.preprocessing
    output_path = Path(output_path)
    if output_path.suffix != ".onnx":
        raise ConfigError("the output must end in .onnx", file=output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    manifest = resolve_manifest(validation_manifest or bundle.split_manifest, bundle_path)
    model = bundle.build_model()
    encoding = metadata_encoding(bundle, model)
    val = split_images(
        manifest,
        "val",
        limit=max_validation_images,
        seed=seed,
        encoding=encoding,
        classes=meta.classes,
    )

    cam = cam_support(model, prep.input_size)
    temperature = _temperature(meta)
    tta_views = calibration_tta_views(meta)
    wrapper = exportable(
        model, temperature, with_cam=cam.available, tta_views=tta_views or ()
    ).eval()

    with tempfile.TemporaryDirectory(prefix="skinml-export-") as tmp:
        raw = Path(tmp) / "graph.onnx"
        exporter = _export_graph(wrapper, raw, prep.input_size, opset=opset)
        session = _session(raw)
        log.info("verifying against PyTorch on %d validation images", len(val.paths))
        report = verify_against_torch(
            wrapper, session, val, prep, meta.classes, tolerance=tolerance, batch_size=batch_size
        )
        final = _final_metadata(
            bundle,
            encoding,
            cam,
            temperature,
            tta_views,
            report,
            exporter,
            _opset_of(raw),
            ood_percentile,
            mlflow_run_id,
        )
        embed_metadata(raw, output_path, final)
    sidecar = write_sidecar(output_path)
    digest = sha256_file(output_path)
    card = write_card(final, output_path, digest)
    result = ExportResult(output_path, sidecar, card, digest, final, report, exporter)
    if quantize == "int8":
        _quantize(
            result,
            bundle,
            manifest,
            val,
            calibration_images,
            max_accuracy_loss,
            seed,
            int8_recipe or Int8Recipe(),
        )
    return result


def metadata_encoding(bundle: ModelBundle, model: Any) -> MetadataEncoding | None:
    """The bundle's patient-metadata encoding; checked against the network's metadata input.

    Raises:
        ExportError: a fusion network without an encoding (or the reverse), or sizes differ.
    """
    doc = bundle.metadata.extra.get("metadata_input")
    n_model = int(getattr(model, "metadata_features", 0))
    if doc is None and n_model == 0:
        return None
    if doc is None or n_model == 0:
        raise ExportError(
            "the bundle's network and its metadata-input encoding do not belong together "
            f"(network metadata features: {n_model}; encoding stored: {doc is not None})",
            fix="re-run skinml-train; do not edit model_kwargs or metadata.extra by hand",
        )
    encoding = MetadataEncoding.from_dict(doc, source="model bundle")
    if encoding.n_features != n_model:
        raise ExportError(
            f"the metadata encoding has {encoding.n_features} features but the network takes "
            f"{n_model}",
            fix="re-run skinml-train; the bundle is inconsistent",
        )
    return encoding


def _temperature(meta: ModelMetadata) -> float:
    cal = meta.calibration
    if cal.method in ("none", "") or cal.applied_in_graph:
        return 1.0
    if cal.method != "temperature":
        raise ExportError(
            f"calibration method {cal.method!r} cannot be applied in the graph",
            expected="'temperature' or 'none'",
            fix="refit calibration with temperature scaling before export",
        )
    return float(cal.temperature)


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _opset_of(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _final_metadata(
    bundle: ModelBundle,
    encoding: MetadataEncoding | None,
    cam: CamSupport,
    temperature: float,
    tta_views: tuple[str, ...] | None,
    report: VerificationReport,
    exporter: str,
    opset: int | None,
    ood_percentile: float,
    mlflow_run_id: str | None,
) -> ModelMetadata:
    import torch

    from skinml import __version__
    from skinml.tracking.provenance import git_commit, utc_now

    meta = bundle.metadata
    inputs, outputs = tensor_docs(
        meta.preprocessing, meta.classes, cam, temperature, encoding, tta_views or ()
    )
    # tta_views None: nothing records how the calibration was fitted (a hand-made bundle)
    calibration = replace(
        meta.calibration, applied_in_graph=True, temperature=temperature, tta_views=tta_views
    )
    prov = meta.provenance
    prov = replace(
        prov,
        git_commit=prov.git_commit or git_commit(),
        mlflow_run_id=prov.mlflow_run_id or mlflow_run_id,
        created_utc=prov.created_utc or utc_now(),
    )
    extra = dict(meta.extra)
    extra.update(
        {
            "architecture": bundle.architecture,
            "tensors": {
                "input": INPUT_NAME,
                **({"metadata": METADATA_INPUT_NAME} if encoding is not None else {}),
                "logits": "logits",
                "probabilities": "probabilities",
                "cam": "cam" if cam.available else None,
            },
            "cam": _cam_doc(cam),
            "ood": {
                "score": "energy",
                "definition": OOD_DEFINITION,
                "direction": "flag when score > threshold (higher = less like training data)",
                "threshold": fit_ood_threshold(report.energy, ood_percentile),
                "percentile": ood_percentile,
                "fitted_on": "validation",
                "n": int(report.n_images),
            },
            "verification": report.as_dict(),
            "export": {
                "exporter": exporter,
                "opset": opset,
                "exported_utc": utc_now(),
                "skinml_version": __version__,
                "git_commit": git_commit(),
                "torch_version": torch.__version__,
                "precision": "fp32",
                "dynamic_axes": {
                    "image": [0],
                    **({METADATA_INPUT_NAME: [0]} if encoding is not None else {}),
                },
            },
        }
    )
    return replace(
        meta,
        inputs=inputs,
        outputs=outputs,
        calibration=calibration,
        provenance=prov,
        extra=extra,
        schema_version=SCHEMA_VERSION,  # a bundle from an older skinml may say 1.0
    )


def _cam_doc(cam: CamSupport) -> dict[str, Any]:
    """``extra["cam"]``: how heatmaps are made, and ``coarse`` when the map is too small."""
    if not cam.available:
        return {"available": False, "reason": cam.reason}
    doc: dict[str, Any] = {
        "available": True,
        "method": "CAM (Zhou et al. 2016): classifier weights times the last "
        "feature map, computed in the graph (output 'cam')",
        "feature_shape": list(cam.feature_shape or ()),
    }
    if cam.feature_shape:
        note = coarse_cam_note(cam.feature_shape[1], cam.feature_shape[2])
        if note:
            doc["coarse"] = note
    return doc


def _quantize(
    result: ExportResult,
    bundle: ModelBundle,
    manifest: Path,
    val: Any,
    calibration_images: int,
    max_loss: float,
    seed: int,
    recipe: Int8Recipe,
) -> None:
    prep = result.metadata.preprocessing
    doc = bundle.metadata.extra.get("metadata_input")
    encoding = None if doc is None else MetadataEncoding.from_dict(doc, source="model bundle")
    train = split_images(
        manifest,
        "train",
        limit=calibration_images,
        seed=seed,
        encoding=encoding,
        classes=bundle.metadata.classes,
    )
    int8_path = result.onnx_path.with_name(result.onnx_path.stem + ".int8.onnx")
    with tempfile.TemporaryDirectory(prefix="skinml-int8-") as tmp:
        raw8 = Path(tmp) / "int8.onnx"
        _, n_cal, kept_in_float = quantize_int8(result.onnx_path, raw8, train, prep, tmp, recipe)
        measured = compare_int8(
            _session(result.onnx_path), _session(raw8), val, prep, result.metadata.classes
        )
        q = build_report(
            measured,
            calibration_images=n_cal,
            kept_in_float=kept_in_float,
            max_loss=max_loss,
            recipe=recipe,
        )
        result.quantization = q
        if not q.accepted:
            loss = (
                "unknown (no labelled validation images)"
                if q.accuracy_loss_points is None
                else f"{q.accuracy_loss_points:.2f} points"
            )
            raise QuantizationRefusedError(
                f"int8 quantization refused: validation accuracy fell from "
                f"{q.accuracy_fp32} (fp32) to {q.accuracy_int8} (int8) on "
                f"{q.validation_images} images, a loss of {loss}, above the allowed "
                f"{q.max_accuracy_loss_points:.2f} points; no int8 file was written. The fp32 "
                f"model {result.onnx_path} is valid",
                file=result.onnx_path,
                fix="use the fp32 model, calibrate on more training images "
                "(--calibration-images), or raise --max-accuracy-loss if the loss is acceptable",
                result=result,
                report=q,
            )
        meta = result.metadata
        extra = dict(meta.extra)
        extra["quantization"] = {k: v for k, v in q.as_dict().items()}
        extra["ood"] = {**extra["ood"], "threshold": q.ood_threshold_int8, "model": "int8"}
        extra["export"] = {**extra["export"], "precision": "int8"}
        meta8 = replace(meta, extra=extra)
        embed_metadata(raw8, int8_path, meta8)
    result.int8_path = int8_path
    result.int8_sidecar_path = write_sidecar(int8_path)
    result.int8_card_path = write_card(meta8, int8_path, sha256_file(int8_path))
    result.int8_metadata = meta8
