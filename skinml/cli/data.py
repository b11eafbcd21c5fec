"""``skinml-data``: list, describe, verify and split image datasets.

A thin command: it parses arguments and calls ``skinml.data`` functions.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import warnings
from pathlib import Path

from skinml.cli_errors import run_command
from skinml.data.card import DatasetCard, DatasetInfo, build_card
from skinml.data.manifest import Manifest, write_manifest
from skinml.errors import ConfigError, ManyErrors, SkinmlInputError, with_fix

EPILOG = """\
examples:
  skinml-data list
      registered datasets, their licences and where their files are looked for
  skinml-data vocabulary
      the diagnosis table: codes, names, synonyms and which are malignant
  skinml-data card isic_uda1
      the card of the sample that ships with skinml: classes, which are malignant,
      counts per split and label, sites, age/sex, leakage, licence, citation
  skinml-data card ham10000 --root ../shared/data/ham10000_images_200x150 -o ham10000.md
  skinml-data card my_manifest.csv
  skinml-data verify isic2017 --root ../shared/data/isic2017_256
      checks every file against the dataset's MD5SUMS, decodes every image and
      names every missing, changed or unreadable file (exit status 1 if any)
  skinml-data verify my_manifest.csv --checksums SHA256SUMS
  skinml-data split ham10000 --root ../shared/data/ham10000_images_200x150 \\
      --strategy lesion -o ham10000_lesion_split.csv
      grouped, stratified train/val/test split: no lesion in two splits

Datasets named without --root are looked for in $SKINML_DATA_DIR/<folder>
(isic_uda1 ships with skinml and needs no root). Anything that is not a
registered name is read as a manifest CSV (columns image, label, and optionally
patient_id, lesion_id, site, device, split, age, sex, ...).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skinml-data",
        description="Inspect, verify and split skin-image datasets (the image-manifest contract).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="list registered datasets", description="List registered datasets.")
    sub.add_parser(
        "vocabulary",
        help="print the diagnosis table (codes, names, synonyms, malignant)",
        description="Print skinml's one diagnosis table as Markdown: the canonical code of each "
        "diagnosis, its name, whether it is malignant, the broader class it is counted under, "
        "and the synonyms every reader (manifests, teaching answers, QC records, ingest) accepts.",
    )

    card = sub.add_parser(
        "card",
        help="print a dataset card (counts per split and label, licence, caveats)",
        description="Print the dataset card: classes, malignant classes, counts per split and "
        "label, sites, metadata, leakage between splits, licence, citation and caveats.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(card)
    card.add_argument("-o", "--output", type=Path, help="also write the card as Markdown here")
    card.add_argument("--json", type=Path, help="also write the card as JSON here")
    card.add_argument(
        "--fingerprint",
        action="store_true",
        help="compute the dataset fingerprint (SHA-256 of the manifest and every file)",
    )

    verify = sub.add_parser(
        "verify",
        help="check checksums and decode every image; exit 1 on any problem",
        description="Check every file against a checksum list (the dataset's own MD5SUMS or "
        "SHA256SUMS, or --checksums), decode every image, and name every missing, changed or "
        "unreadable file. Exit status 0 when all is well, 1 otherwise.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(verify)
    verify.add_argument("--checksums", type=Path, help="md5sum/sha256sum list to check against")
    verify.add_argument("--no-decode", action="store_true", help="skip decoding the images")
    verify.add_argument("--workers", type=int, default=2, help="threads for decoding (default 2)")

    split = sub.add_parser(
        "split",
        help="assign train/val/test without lesion/patient leakage",
        description="Assign train/val/test splits, grouped by lesion or patient and stratified "
        "by label, and write the manifest CSV with its split column.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(split)
    split.add_argument(
        "--strategy",
        choices=("lesion", "patient", "predefined"),
        default="lesion",
        help="lesion (default): no lesion in two splits; patient: no patient or lesion in two "
        "splits; predefined: keep the source's split (e.g. DermaMNIST's)",
    )
    split.add_argument("--val", type=float, default=0.1, help="validation fraction (default 0.1)")
    split.add_argument("--test", type=float, default=0.2, help="test fraction (default 0.2)")
    split.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    split.add_argument("-o", "--output", type=Path, required=True, help="manifest CSV to write")
    return parser


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="NAME_OR_MANIFEST", help="registered name or manifest CSV")
    p.add_argument("--root", type=Path, help="the dataset's folder (for registered names)")
    p.add_argument(
        "--on-missing",
        choices=("raise", "exclude"),
        default="raise",
        help="rows whose image is missing: stop and list them (raise, default) or leave them "
        "out and list them in the card (exclude)",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skinml-data``; returns the exit status."""
    args = build_parser().parse_args(argv)
    commands = {"card": _card, "verify": _verify, "split": _split}

    def body() -> int:
        if args.command in ("list", "vocabulary"):
            return _list() if args.command == "list" else _vocabulary()
        return commands[args.command](args)

    return run_command(f"skinml-data {args.command}", body, fixes=_CLI_FIXES)


# -- subcommands ----------------------------------------------------------------------------


def _list() -> int:
    import os

    from skinml.data.registry import DATA_DIR_ENV, get_entry, list_datasets

    base = next((os.environ[e] for e in DATA_DIR_ENV if os.environ.get(e)), None)
    print("Registered image datasets (skinml-data card NAME for the full card):\n")
    for name in list_datasets():
        entry = get_entry(name)
        if not entry.needs_root and entry.folder is None:
            where = "embedded in skinml (no root needed)"
        elif base and entry.folder and (Path(base) / entry.folder).exists():
            where = f"found at {Path(base) / entry.folder}"
        elif entry.folder:
            where = f"pass --root, or put it at $SKINML_DATA_DIR/{entry.folder}"
        else:
            where = "pass --root"
        print(f"  {name:<12} {entry.info.title}")
        print(
            f"  {'':<12} classes: {', '.join(entry.info.class_names)}; "
            f"malignant: {', '.join(entry.info.malignant) or 'none'}"
        )
        print(f"  {'':<12} licence: {textwrap.shorten(entry.info.licence, 80, placeholder=' ...')}")
        print(f"  {'':<12} files: {where}\n")
    print("Embedded tables (Python: skinml.datasets):")
    print("  uci_dermatology  366 patients, 6 erythemato-squamous diagnoses (load_uci_dermatology)")
    return 0


def _vocabulary() -> int:
    from skinml.vocabulary import markdown_table

    print(markdown_table())
    print(
        "\nMatching ignores case, repeated spaces, '_', '-' and apostrophes. A dataset or model "
        "with a fixed class list keeps its own codes; a narrower diagnosis maps onto its "
        "'counted under' class when the list lacks it."
    )
    return 0


def _card(args: argparse.Namespace) -> int:
    if args.source == "uci_dermatology":
        from skinml.datasets import load_uci_dermatology

        card = load_uci_dermatology().card
    else:
        manifest, card = _load_with_card(args)
        if args.fingerprint:
            from skinml.data.fingerprint import dataset_fingerprint

            fp = dataset_fingerprint(manifest, progress=True)
            card = DatasetCard(**{**card.__dict__, "fingerprint": fp})
    text = card.to_markdown()
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"card written to {args.output}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(card.to_dict(), indent=2), encoding="utf-8")
        print(f"card JSON written to {args.json}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from skinml.data.check import check_images
    from skinml.data.fingerprint import (
        checksums_for_manifest,
        dataset_fingerprint,
        verify_checksum_list,
    )

    problems = 0
    try:
        manifest, _ = _load_with_card(args, on_missing="exclude")
    except ManyErrors as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    missing = manifest.excluded
    if len(missing):
        missing = missing[missing["reason"].astype(str).str.startswith("missing image file")]
    print(f"dataset {manifest.name!r}: {len(manifest):,} images under {manifest.root}")
    if len(missing):
        problems += len(missing)
        print(f"FAILED: {len(missing)} rows point at missing image files:")
        for r in missing.itertuples():
            print(f"  {r.file} row {r.row}: {r.image}")
    sums = args.checksums or _default_checksums(args.source, manifest)
    if sums is None:
        print("checksums: no checksum list found (pass --checksums FILE); files not compared")
    else:
        report = verify_checksum_list(sums, progress=True)
        _, uncovered = checksums_for_manifest(manifest, sums)
        if report.ok:
            print(f"checksums: all {report.checked:,} files in {sums} match")
        else:
            problems += len(report.missing) + len(report.changed)
            print(f"FAILED checksums ({sums}):\n{report.summary()}")
        if uncovered:
            problems += len(uncovered)
            shown = "\n".join(f"  not in list: {u}" for u in uncovered[:50])
            more = f"\n  ... and {len(uncovered) - 50} more" if len(uncovered) > 50 else ""
            print(f"FAILED: {len(uncovered)} images are not covered by {sums}:\n{shown}{more}")
    if not args.no_decode:
        images = check_images(manifest, progress=True, workers=max(1, args.workers))
        problems += len(images.bad)
        print(("" if images.ok else "FAILED: ") + images.summary())
    if len(missing) == 0:
        print(f"fingerprint: {dataset_fingerprint(manifest)}")
    print("OK: no problems found" if problems == 0 else f"{problems} problems found")
    return 0 if problems == 0 else 1


def _split(args: argparse.Namespace) -> int:
    from skinml.data.splits import assign_splits, leakage_report

    manifest, _ = _load_with_card(args)
    try:
        out = assign_splits(
            manifest,
            strategy=args.strategy,
            val_fraction=args.val,
            test_fraction=args.test,
            seed=args.seed,
        )
    except ConfigError as exc:
        if "fraction" not in exc.problem:
            raise
        # The library names its arguments (val_fraction); this command's flags are --val/--test.
        raise with_fix(
            exc, "give --val and --test in [0, 1) with a sum below 1, e.g. --val 0.1 --test 0.2"
        ) from None
    path = write_manifest(out, args.output)
    counts = out.frame.groupby("split").size().reindex(["train", "val", "test"]).fillna(0)
    print(
        f"split {out.name!r} by {args.strategy} (seed {args.seed}): "
        + ", ".join(f"{k} {int(v):,}" for k, v in counts.items())
    )
    for col in ("lesion_id", "patient_id"):
        print(f"  leakage by {col}: {leakage_report(out, by=col).summary()}")
    print(f"manifest written to {path}")
    return 0


# -- helpers --------------------------------------------------------------------------------


def _load_with_card(
    args: argparse.Namespace, *, on_missing: str | None = None
) -> tuple[Manifest, DatasetCard]:
    from skinml.data.registry import get_card, get_dataset, list_datasets

    on_missing = on_missing or args.on_missing
    with warnings.catch_warnings():
        # Excluded rows are shown in the card / report, so the warning would repeat them.
        warnings.simplefilter("ignore", UserWarning)
        if args.source in list_datasets():
            kwargs = {} if args.source == "dermamnist" else {"on_missing": on_missing}
            manifest = get_dataset(args.source, args.root, **kwargs)
            return manifest, get_card(args.source, manifest=manifest)
        from skinml.data.loaders.csv_manifest import load_manifest_csv

        path = Path(args.source)
        if not path.is_file():
            raise SkinmlInputError(
                f"{args.source!r} is neither a registered dataset nor a manifest file",
                fix=f"use one of {list_datasets()} or the path of a manifest CSV",
            )
        manifest = load_manifest_csv(path, root=args.root, on_missing=on_missing)
    info = DatasetInfo(
        name=manifest.name,
        title=f"Manifest {path.name}",
        description=f"Read from {path.resolve()}.",
        licence="not stated (a manifest CSV carries no licence: record it with the data)",
    )
    return manifest, build_card(manifest, info, manifest_csv=str(path.resolve()))


#: Fixes the loaders word for the Python API (their arguments) -> the same advice as flags.
_CLI_FIXES = {
    "on_missing=": "restore the files, fix the image paths or --root, or pass --on-missing "
    "exclude to leave these rows out (the card then lists them)",
    "download=True": "put the .npz file in the folder given as --root (fetch it once on a "
    'machine with internet: python -c "from skinml.data.registry import get_dataset; '
    "get_dataset('dermamnist', 'DIR', download=True)\")",
    "columns=": "name the manifest's columns image and label (and patient_id, lesion_id, site, "
    "device when known)",
}


def _default_checksums(source: str, manifest: Manifest) -> Path | None:
    from skinml.data.registry import checksum_list, list_datasets

    if source in list_datasets():
        if source == "isic_uda1" and manifest.root.name == "isic_uda1":
            from skinml.datasets import embedded_dir

            return embedded_dir() / "SHA256SUMS"
        return checksum_list(source, manifest)
    for name in ("SHA256SUMS", "MD5SUMS"):
        candidate = Path(manifest.root) / name
        if candidate.is_file():
            return candidate
    return None


if __name__ == "__main__":
    raise SystemExit(main())
