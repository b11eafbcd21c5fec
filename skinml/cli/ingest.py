"""``skinml-ingest``: turn hospital deliveries into one verified dataset, or re-verify one."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from skinml.cli_errors import run_command

_EPILOG = """\
what a delivery looks like (one folder per hospital and delivery):
  county_north/                    hospital name = folder name (or --hospital)
    SHA256SUMS or MD5SUMS          optional: the sender's checksums, verified on arrival
    melanoma/IMG_0001.jpg          EITHER images in sub-folders named by label
    nevus/scan 7.tif  ...          (JPEG, PNG, BMP, TIFF, photographic DICOM); labels are
                                   read through skinml's diagnosis table: melanoma -> mel
    cases.csv                      OR a case list: image,label,patient_id,lesion_id,device,
                                   age,sex,...; then it is authoritative and files it does
                                   not name are rejected; other free-text columns are dropped

what you get in DATASET_DIR:
  images/<hospital>/<sha256>.jpg   clean RGB images: upright, no EXIF/GPS/ICC/thumbnails
  manifest.csv                     image,label,patient_id,lesion_id,site,device,split,... with
                                   keyed pseudonyms, duplicate_group and split_group columns
  dataset_card.json / .md          counts per hospital and label, settings, every checksum
  SHA256SUMS                       checksums of everything above (see `verify`)
  rejected.csv, ingest_report.html every rejected input with the reason (internal: they name
                                   source files, so keep them inside the centre)

label conflicts: when copies of one image (same bytes, or same pixels after decoding)
arrive with different labels, at one hospital or across hospitals, or cases.csv lists a
file twice with two labels, no copy enters the dataset and no label is chosen: every copy
is rejected with stage 'conflict' and a reason naming all copies. Correct the label and run
again. The summary prints inputs = accepted + rejected per stage (rows of rejected.csv).

examples:
  # create a key once and keep it inside the centre (never inside a dataset)
  python -c 'import secrets; print(secrets.token_hex(32))' > /secure/pseudonym.key

  skinml-ingest run deliveries/county_north deliveries/county_south \\
      --out datasets/derm_2026 --key-file /secure/pseudonym.key
  skinml-ingest run inbox/2026-11 --hospital county_north --out datasets/derm_2026 \\
      --key-file /secure/pseudonym.key --format png --max-side 2048 --workers 2
  SKINML_PSEUDONYM_KEY=... skinml-ingest run inbox/a --out ds --keep-column body_site
  skinml-ingest verify datasets/derm_2026      # exit code 1 names changed/missing files

An interrupted run resumes where it stopped when run again with the same
arguments; running it twice gives a byte-identical manifest and images. To add
a later delivery, run again with all deliveries: finished files are reused.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so the help text can be tested)."""
    parser = argparse.ArgumentParser(
        prog="skinml-ingest",
        description="Verify, clean and pseudonymise image deliveries from many hospitals into "
        "one dataset with a manifest, a dataset card and checksums.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,verify}")

    run = sub.add_parser(
        "run",
        help="ingest deliveries into a dataset folder",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "deliveries", nargs="+", metavar="DELIVERY_DIR", help="one folder per hospital delivery"
    )
    run.add_argument(
        "--out", required=True, metavar="DATASET_DIR", help="dataset folder to create or resume"
    )
    run.add_argument(
        "--key-file", metavar="KEY", help="pseudonymisation key file (else $SKINML_PSEUDONYM_KEY)"
    )
    run.add_argument(
        "--hospital",
        action="append",
        metavar="NAME",
        help="hospital name, once per delivery in order (default: folder names)",
    )
    run.add_argument(
        "--format",
        choices=["jpeg", "png"],
        default="jpeg",
        help="output format: jpeg (quality --quality) or lossless png; default jpeg",
    )
    run.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    run.add_argument(
        "--max-side",
        type=int,
        metavar="N",
        help="downscale so the longer side is at most N pixels (default: keep size)",
    )
    run.add_argument(
        "--workers", type=int, default=1, help="processes for decoding and encoding (default 1)"
    )
    run.add_argument(
        "--keep-column",
        action="append",
        default=[],
        metavar="COL",
        help="keep this case-list column (others that may hold free text or names "
        "are dropped); repeatable",
    )
    run.add_argument(
        "--id-scope",
        choices=["hospital", "global"],
        default="hospital",
        help="pseudonymise patient/lesion ids within each hospital (default) or "
        "across hospitals when they share one id system",
    )
    run.add_argument(
        "--near-threshold",
        type=int,
        default=8,
        metavar="BITS",
        help="pHash distance for near-duplicates (default 8 of 64 bits)",
    )
    run.add_argument(
        "--max-file-mb",
        type=float,
        default=200.0,
        help="reject files above this size (default 200)",
    )
    run.add_argument(
        "--max-pixels",
        type=int,
        default=100_000_000,
        help="reject images above this many pixels (default 100 million)",
    )
    run.add_argument(
        "--classes",
        metavar="A,B,...",
        help="the diagnoses the dataset may hold (codes or synonyms, e.g. mel,nv,bcc); an input "
        "whose label fits none is rejected. Labels always go through the diagnosis table "
        "('Melanoma/' and 'mel' are one label, mel; `skinml-data vocabulary` lists it)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    verify = sub.add_parser(
        "verify",
        help="re-check a dataset against its SHA256SUMS",
        epilog="example:\n  skinml-ingest verify datasets/derm_2026\n"
        "exit code 0 when every file matches, 1 otherwise (names the files)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("dataset", metavar="DATASET_DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 verification failed, 2 bad input)."""
    args = build_parser().parse_args(argv)
    body = _run if args.command == "run" else _verify
    return run_command("skinml-ingest", lambda: body(args))


def _run(args: argparse.Namespace) -> int:
    from skinml.ingest import IngestConfig, run_ingest
    from skinml.privacy.pseudonym import load_key

    key = load_key(args.key_file)
    config = IngestConfig(
        fmt=args.format,
        quality=args.quality,
        max_side=args.max_side,
        workers=args.workers,
        keep_columns=tuple(args.keep_column),
        id_scope=args.id_scope,
        near_threshold=args.near_threshold,
        max_file_bytes=int(args.max_file_mb * 2**20),
        max_pixels=args.max_pixels,
        isolate_decoder=True,  # a decoder crash rejects one file, never the whole delivery
        classes=None
        if args.classes is None
        else tuple(c.strip() for c in args.classes.split(",") if c.strip()),
    )
    result = run_ingest(
        args.deliveries, args.out, key, config, hospitals=args.hospital, progress=not args.quiet
    )
    for line in result.lines:
        print(line)
    print(f"dataset:   {result.dataset_dir}  (manifest.csv, images/, dataset_card.md, SHA256SUMS)")
    print(f"rejected:  {result.rejected_path}")
    print(f"report:    {result.report_path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from skinml.ingest import verify_dataset

    result = verify_dataset(args.dataset, progress=True)
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
