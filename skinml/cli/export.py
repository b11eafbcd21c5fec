"""``skinml-export``: a trained run (run directory, bundle file or MLflow run) -> model file.

Thin entry point: parse arguments, fetch the bundle, call
:func:`skinml.export.export_bundle`, say where everything went.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from skinml.cli_errors import run_command
from skinml.errors import ConfigError

EPILOG = """\
examples:
  skinml-export outputs/2026-11-23/resnet18 -o models/ham10000_resnet18.onnx
  skinml-export outputs/run/model_bundle.pt -o model.onnx --quantize int8
  skinml-export --mlflow-run 3f2a9c... --tracking-uri sqlite:///mlflow.db -o model.onnx

What you get beside MODEL.onnx:
  MODEL.onnx.sha256   checksum (skinml-predict verifies it when present)
  MODEL.card.html     model card for people (open it in a browser): in brief, classes,
                      preprocessing, calibration, thresholds, metrics with CIs,
                      verification, provenance; MODEL.card.md holds the same text
  MODEL.int8.onnx     with --quantize int8, only if validation accuracy drops by
                      at most --max-accuracy-loss (plus its .sha256 and cards)

The export is verified: onnxruntime must match PyTorch on the run's validation
images (max |dp| <= 1e-4, same top class) or nothing is written.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skinml-export",
        description="Export a trained skinml image classifier to one verified, self-contained "
        "ONNX model file with its metadata, checksum and model card.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run", nargs="?", type=Path, help="skinml-train run directory or model_bundle.pt"
    )
    p.add_argument("--mlflow-run", metavar="RUN_ID", help="export the bundle logged in this run")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlruns)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    p.add_argument(
        "--quantize", choices=["int8"], default=None, help="also write a static int8 (QDQ) model"
    )
    p.add_argument(
        "--max-accuracy-loss",
        type=float,
        default=0.005,
        help="refuse int8 above this validation accuracy loss (fraction; 0.005 = 0.5 points)",
    )
    p.add_argument(
        "--calibration-images",
        type=int,
        default=200,
        help="training images used to calibrate int8 (default 200)",
    )
    p.add_argument(
        "--int8-calibration",
        choices=["minmax", "percentile", "entropy"],
        default=None,
        help="how int8 activation ranges are chosen (default: skinml's measured recipe)",
    )
    p.add_argument(
        "--int8-percentile",
        type=float,
        default=None,
        help="with --int8-calibration percentile: the percentile kept (e.g. 99.999)",
    )
    p.add_argument(
        "--int8-float-depthwise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep depthwise convolutions in float (default: skinml's measured recipe)",
    )
    p.add_argument(
        "--int8-float-first-convs",
        type=int,
        default=None,
        metavar="K",
        help="keep the first K convolutions after the stem in float (default: skinml's "
        "measured recipe)",
    )
    p.add_argument(
        "--int8-reduce-range",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="7-bit int8 weights, safe on CPUs without VNNI (default: on; --no-int8-reduce-range "
        "for full 8-bit weights when every CPU that runs the file has VNNI)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: exporter's)")
    p.add_argument(
        "--manifest", type=Path, default=None, help="split manifest CSV, if it moved since training"
    )
    p.add_argument(
        "--max-validation-images",
        type=int,
        default=2000,
        help="cap on validation images for verification (seeded sample)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns 0 on success, 2 on bad input or a refused export."""
    args = build_parser().parse_args(argv)
    return run_command("skinml-export", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from skinml.export import QuantizationRefusedError, export_bundle
    from skinml.export.mlflow_source import download_bundle

    if (args.run is None) == (args.mlflow_run is None):
        raise ConfigError("give either a run directory/bundle file or --mlflow-run RUN_ID")
    source = args.run
    if args.mlflow_run:
        source = download_bundle(args.mlflow_run, tracking_uri=args.tracking_uri)
        print(f"downloaded the bundle of MLflow run {args.mlflow_run} to {source}")
    try:
        result = export_bundle(
            source,
            args.output,
            quantize=args.quantize,
            max_accuracy_loss=args.max_accuracy_loss,
            calibration_images=args.calibration_images,
            int8_recipe=_recipe(args),
            opset=args.opset,
            validation_manifest=args.manifest,
            max_validation_images=args.max_validation_images,
            mlflow_run_id=args.mlflow_run,
        )
    except QuantizationRefusedError as exc:
        if exc.result is not None:
            _report(exc.result)
        print(f"skinml-export: error: {exc}", file=sys.stderr)
        return 2
    _report(result)
    return 0


def _recipe(args: argparse.Namespace):
    """The int8 recipe: skinml's default with any option the user gave."""
    from dataclasses import replace

    from skinml.export.quantize import Int8Recipe

    chosen = {
        "calibration": args.int8_calibration,
        "percentile": args.int8_percentile,
        "float_depthwise": args.int8_float_depthwise,
        "float_first_convs": args.int8_float_first_convs,
        "reduce_range": args.int8_reduce_range,
    }
    return replace(Int8Recipe(), **{k: v for k, v in chosen.items() if v is not None})


def _report(result) -> None:
    v = result.verification
    print(f"model file: {result.onnx_path}")
    print(f"  checksum: {result.sidecar_path}")
    print(f"  model card: {result.card_html_path} (and {result.card_path.name})")
    print(
        f"  verified on {v.n_images} validation images: max |dp| = "
        f"{v.max_abs_diff_probabilities:.2e}, top class identical ({result.exporter} exporter)"
    )
    meta_input = result.metadata.extra.get("metadata_input")
    if meta_input:
        print(
            f"  second input 'metadata': {meta_input['n_features']} features from the columns "
            f"{', '.join(meta_input['columns'])} (skinml-predict needs them in its CSV input)"
        )
    q = result.quantization
    if q is not None and result.int8_path is not None:
        print(f"int8 model file: {result.int8_path}")
        print(
            f"  validation accuracy fp32 {q.accuracy_fp32:.4f} -> int8 {q.accuracy_int8:.4f} "
            f"(loss {q.accuracy_loss_points:.2f} points, allowed "
            f"{q.max_accuracy_loss_points:.2f}); top-1 agreement {q.top1_agreement_with_fp32:.3f}"
        )
        print(f"  checksum: {result.int8_sidecar_path}; model card: {result.int8_card_path}")
