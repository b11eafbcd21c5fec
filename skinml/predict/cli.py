"""``skinml-predict``: score images (or patient tables) with a skinml ONNX model file.

Thin entry point: parse arguments, open the model once, dispatch on the task in
its metadata, print where the outputs are. Needs only onnxruntime, numpy,
Pillow and tqdm.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from skinml.errors import ConfigError, ModelFileError

EPILOG = """\
examples:
  skinml-predict model.onnx lesion.jpg -o predictions.csv
  skinml-predict model.onnx clinic_photos/ -o predictions.csv --heatmaps heatmaps/
  skinml-predict model.onnx worklist.csv -o predictions.csv --threads 2
  skinml-predict psoriasis_risk.onnx patients.csv -o risk.csv     (tabular risk model)
  skinml-predict psoriasis_risk.onnx genotypes.vcf.gz --survey survey.csv -o risk.csv
  skinml-predict fusion.onnx --describe      (what the model needs as input)
  skinml-predict fusion.onnx cases.csv -o predictions.csv   (image + patient metadata)

INPUT is an image, a folder (searched recursively for image files) or a CSV
with an 'image' (or 'path') column; relative paths are relative to the CSV.

Models with patient metadata (metadata fusion: age, sex, anatomical site) need
a CSV INPUT with the image column plus every metadata column the model names,
e.g. image,age,sex,localization; --describe lists them and the values each
accepts. An empty cell (or unknown, NA) means unknown and is encoded as the
model file documents (noted in the metadata_notes column); a value that is not
valid (age 'abc' or 150, an unrecognised sex) makes that row an error row
naming the column and CSV row.

Every input gets exactly one row: status 'ok' with calibrated probabilities
(p_<class>), predicted_class, malignant_probability, malignant_flag (1 when at
or above the model's malignant operating threshold), quality_flags (blurry,
underexposed, overexposed, clipped, too_small), ood_score (energy; higher is
less like the training data) and ood_flag; or status 'error' with the reason.

Test-time augmentation (averaging flipped views) is part of the model file when
its training run used it, so the default output is the training run's; --describe
and the model card say which. --tta changes nothing for such a file, is refused
for a model calibrated without it, and for an older file whose run used it,
averages the views' logits before the temperature, as training did.

Photos are decoded as the model file says, which is how its training decoded
them: JPEGs of several megapixels at reduced DCT scale (libjpeg's 1/2, 1/4 or
1/8, shorter side kept >= 2 x input size, longer >= 256 px), other formats
every pixel.
Quality flags are measured on a working copy of at most 256 px; too_small on the
original size. HEIC/HEIF phone photos need pip install 'skinml[heif]'.

The model file is checked against MODEL.onnx.sha256 when that file is present,
and refused if it carries no skinml metadata.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skinml-predict",
        description="Score skin images with a skinml model file (.onnx) and write one CSV row "
        "per input.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", type=Path, help="the .onnx file written by skinml-export")
    p.add_argument(
        "input",
        type=Path,
        nargs="?",
        help="an image, a folder of images, or a CSV list (a CSV with the metadata columns "
        "for a model with patient metadata)",
    )
    p.add_argument(
        "--describe",
        action="store_true",
        help="print what the model needs as input (image size, metadata CSV columns and "
        "their accepted values) and exit",
    )
    p.add_argument(
        "-o", "--output", type=Path, default=Path("predictions.csv"), help="CSV to write"
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all)")
    p.add_argument(
        "--workers", type=int, default=None, help="image-decoding threads (default: up to 4)"
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation as the model was calibrated with it (see below); a "
        "model trained with it already does it by default",
    )
    p.add_argument(
        "--heatmaps", type=Path, default=None, metavar="DIR", help="write heatmap PNGs here"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--survey",
        type=Path,
        default=None,
        help="risk models only: survey CSV to join with a VCF INPUT on sample_id",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad input or model file)."""
    from skinml.cli_errors import run_command

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input is None and not args.describe:
        parser.error("the following arguments are required: input (or use --describe)")
    return run_command("skinml-predict", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from skinml.modelfile import read_metadata, verify_sidecar
    from skinml.outputs import prepare_output_file
    from skinml.predict.predictor import make_session

    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1", column="--batch-size")
    if args.threads is not None and args.threads < 1:
        raise ConfigError("--threads must be at least 1", fix="omit it to use every core")
    if args.workers is not None and args.workers < 0:
        raise ConfigError(
            "--workers must be 0 (decode in the main thread) or more", fix="omit it for up to 4"
        )
    prepare_output_file(args.output, what="predictions CSV")  # before minutes of scoring
    checksum = verify_sidecar(args.model)
    session = make_session(args.model, args.threads)
    metadata = read_metadata(args.model, session=session)
    if checksum is None:
        print(
            f"note: no {args.model.name}.sha256 beside the model; checksum not verified",
            file=sys.stderr,
        )
    if args.describe:
        return _describe(args.model, metadata)
    if metadata.task == "tabular_risk":
        return _run_tabular(args, metadata, session)
    if metadata.task != "image_classification":
        raise ModelFileError(f"unsupported task {metadata.task!r}", file=args.model)
    if args.survey is not None:
        raise ConfigError(
            "--survey applies to tabular risk models; this is an image classifier",
            file=args.model,
            fix="drop --survey",
        )
    from skinml.predict.predictor import ImagePredictor
    from skinml.predict.run import predict_to_csv

    predictor = ImagePredictor(
        args.model, threads=args.threads, tta=args.tta, workers=args.workers, session=session
    )
    if predictor.tta_plan.note:
        print(predictor.tta_plan.note, file=sys.stderr)
    s = predict_to_csv(
        args.model,
        args.input,
        args.output,
        batch_size=args.batch_size,
        heatmap_dir=args.heatmaps,
        progress=not args.no_progress,
        predictor=predictor,
    )
    print(f"wrote {s.n_rows} rows to {s.output_csv} ({s.n_ok} ok, {s.n_error} errors)")
    print(
        f"flags among ok rows: {s.n_malignant_flag} malignant suspected, "
        f"{s.n_ood_flag} out-of-distribution, {s.n_quality_flag} image-quality"
    )
    if s.skipped:
        shown = ", ".join(str(p) for p in s.skipped[:5])
        more = f" and {len(s.skipped) - 5} more" if len(s.skipped) > 5 else ""
        print(f"skipped {len(s.skipped)} files without an image suffix: {shown}{more}")
    if s.heatmap_dir is not None:
        coarse = f"; {s.heatmap_note}" if s.heatmap_note else ""
        print(f"heatmaps in {s.heatmap_dir}{coarse}")
    print_model_warnings(metadata.warnings)
    return 0


def print_model_warnings(warnings: Sequence[str]) -> None:
    """Close with the model file's warnings, so they are the last thing read."""
    from skinml.modelfile.metadata import warning_line

    for text in warnings:
        print(warning_line(text))


def _describe(model: Path, metadata) -> int:
    """Print what the model expects as input, from its own metadata document."""
    print(f"{model}: {metadata.task}, classes {', '.join(metadata.classes)}")
    for name, doc in metadata.inputs.items():
        print(f"  graph input {name!r}: {doc}")
    meta_input = metadata.extra.get("metadata_input")
    if metadata.task != "image_classification":
        return 0
    from skinml.modelfile.metadata import describe_decode
    from skinml.modelfile.tta import describe_tta

    print(f"decoding: {describe_decode(metadata.preprocessing)}")
    print(f"test-time augmentation: {describe_tta(metadata)}")
    if meta_input is None:
        print("INPUT: an image, a folder of images, or a CSV with an 'image' column")
        return 0
    from skinml.modelfile.metadata_input import MetadataEncoding

    enc = MetadataEncoding.from_dict(meta_input, source=str(model))
    print(f"INPUT: a CSV with the columns image,{','.join(enc.column_names)}")
    for line in enc.describe().splitlines():
        print(f"  {line}")
    return 0


def _run_tabular(args: argparse.Namespace, metadata, session) -> int:
    if args.tta or args.heatmaps is not None:
        raise ConfigError(
            "--tta and --heatmaps apply to image models; this is a tabular risk model",
            fix="drop those options",
        )
    try:
        from skinml.predict.tabular import run_tabular_predictions
    except ImportError as exc:
        raise ModelFileError(
            f"this skinml installation cannot run tabular risk models ({exc})",
            file=args.model,
            fix="install a skinml version that includes skinml.predict.tabular",
        ) from exc
    out = run_tabular_predictions(
        args.model,
        metadata,
        session,
        args.input,
        args.output,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=not args.no_progress,
        survey=args.survey,
    )
    print(f"wrote risk predictions to {out or args.output}")
    print_model_warnings(metadata.warnings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
