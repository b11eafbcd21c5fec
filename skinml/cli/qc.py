"""``skinml-qc``: which hospitals (and devices) diagnose differently, by how much, how sure.

Thin entry point: parse arguments, validate input, call :mod:`skinml.qc.pipeline`,
say where the outputs are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG_RECORDS = """\
examples:
  # one row per case: hospital, case, diagnosis
  # (+ optional reference, ai, device, date, age, sex, localization)
  skinml-qc records records.csv --out qc_out

  # HAM10000-style columns, adjusted for case mix
  skinml-qc records manifest.csv --out qc_ham --hospital-column dataset --diagnosis-column dx \\
      --image-column file --case-column image_id --covariates age,sex,localization

  # add the AI's opinion: run an exported model on the images, or reuse a predictions CSV
  skinml-qc records records.csv --out qc_out --model model.onnx --image-root images/
  skinml-qc records records.csv --out qc_out --predictions predictions.csv --image-root images/

  # reject rows from unknown hospitals or with diagnoses outside a vocabulary
  # (they are listed in excluded_rows.csv, not lost)
  skinml-qc records records.csv --out qc_out --hospitals hospitals.txt --diagnoses mel,nv,bcc,bkl

outputs (in --out): flags.csv (flagged hospitals: reason, effect, interval), report.html,
one CSV per analysis (mix_crude.csv, mix_adjusted.csv, funnels.csv, agreement_*.csv,
cusum_*.csv, ...), excluded_rows.csv (every row set aside and why) and summary.json.
"""

EPILOG_RATES = """\
examples:
  # events and person-years per hospital: Poisson funnel of the crude rate per 100,000
  skinml-qc rates counts.csv --events-column cases --exposure-column py --out qc_rates

  # several rows per hospital (e.g. sex x age band): also an indirectly standardised funnel (O/E)
  skinml-qc rates counts.csv --events-column cases --exposure-column py \\
      --strata sex,age_band --out qc_rates

  # every row is counted: a file with total rows next to its strata (Chile's sexo = T) would
  # count each event twice; use chile-referrals for that file, or remove the total rows first
"""

EPILOG_CHILE = """\
example:
  skinml-qc chile-referrals ../shared/data/chile_psoriasis_referrals --out qc_chile

reads casos_servicio.csv (2016-2017) as SOURCE.md describes it: F and M rows only (the
T = total rows would double every count), events and person-years summed over the years
each health service reports, sex x age band kept for the standardised funnel. Writes the
same outputs as 'rates' (report.html with one page per service, rates per 100,000).
"""


def build_parser() -> argparse.ArgumentParser:
    from skinml.vocabulary import malignant_codes

    parser = argparse.ArgumentParser(
        prog="skinml-qc",
        description=(
            "Compare hospitals' diagnoses with funnel plots (Spiegelhalter 2005), case-mix "
            "adjustment, "
            "agreement with an expert or AI reference, image/device shift and CUSUM trends. "
            "Hospitals "
            "outside the 95%% limit are 'alert', outside 99.8%% 'alarm'; nothing is ranked."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'skinml-qc records --help', 'skinml-qc rates --help' or "
        "'skinml-qc chile-referrals --help' for examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rec = sub.add_parser(
        "records",
        help="one row per case seen at a hospital",
        epilog=EPILOG_RECORDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("records", type=Path, help="CSV with one row per case")
    rec.add_argument("--out", type=Path, required=True, help="output folder (created)")
    cols = rec.add_argument_group("column names (defaults in brackets)")
    for name, default in (
        ("hospital", "hospital"),
        ("case", "case"),
        ("image", "image"),
        ("diagnosis", "diagnosis"),
        ("reference", "reference"),
        ("ai", "ai"),
        ("device", "device"),
        ("date", "date"),
    ):
        cols.add_argument(f"--{name}-column", default=default, help=f"[{default}]")
    rec.add_argument(
        "--covariates",
        default="age,sex,localization",
        help="case-mix covariates used when present, comma-separated [age,sex,localization]; "
        "'' for none",
    )
    rec.add_argument("--hospitals", help="known hospitals: 'a,b,c' or a file with one per line")
    rec.add_argument(
        "--diagnoses",
        help="allowed diagnoses: 'mel,nv,...' or a file with one per line (codes or synonyms; "
        "others are excluded rows). Labels always go through the diagnosis table: "
        "'Melanoma' and 'mel' are one diagnosis (`skinml-data vocabulary` lists it)",
    )
    rec.add_argument(
        "--malignant",
        help="malignant diagnosis codes or synonyms "
        f"[the diagnosis table's: {','.join(sorted(malignant_codes()))}]",
    )
    rec.add_argument(
        "--model", type=Path, help="exported .onnx model: run it on the images to add the AI column"
    )
    rec.add_argument("--image-root", type=Path, help="folder the image paths are relative to")
    rec.add_argument(
        "--predictions", type=Path, help="existing skinml-predict CSV to join by image"
    )
    rec.add_argument(
        "--batch-size", type=int, default=32, help="batch size when running --model [32]"
    )
    _common(rec)
    rec.add_argument(
        "--n-bootstrap", type=int, default=1000, help="bootstrap resamples for κ [1000]"
    )
    rec.add_argument(
        "--cusum-odds-ratio", type=float, default=2.0, help="shift the CUSUM detects [2]"
    )
    rec.add_argument("--no-per-diagnosis", action="store_true", help="skip per-diagnosis funnels")
    rec.add_argument("--simulated", action="store_true", help="label the report as SIMULATED data")

    rat = sub.add_parser(
        "rates",
        help="aggregated counts: events and person-years per hospital",
        epilog=EPILOG_RATES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rat.add_argument(
        "counts", type=Path, help="CSV with hospital, events, exposure (+ optional strata)"
    )
    rat.add_argument("--out", type=Path, required=True, help="output folder (created)")
    rat.add_argument("--hospital-column", default="hospital", help="[hospital]")
    rat.add_argument("--events-column", default="events", help="[events]")
    rat.add_argument("--exposure-column", default="person_years", help="[person_years]")
    rat.add_argument(
        "--strata", default="", help="columns for indirect standardisation, e.g. sex,age_band"
    )
    rat.add_argument("--per", type=float, default=100_000, help="rate display unit [100000]")
    rat.add_argument("--indicator", default="rate", help="name of the rate in the report [rate]")
    _common(rat)

    chile = sub.add_parser(
        "chile-referrals",
        help="the Chilean psoriasis referrals per health service (real data, shared/data)",
        epilog=EPILOG_CHILE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chile.add_argument(
        "folder", type=Path, help="the chile_psoriasis_referrals folder (casos_servicio.csv)"
    )
    chile.add_argument("--out", type=Path, required=True, help="output folder (created)")
    chile.add_argument("--per", type=float, default=100_000, help="rate display unit [100000]")
    _common(chile)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overdispersion",
        choices=["additive", "multiplicative", "none"],
        default="additive",
        help="correction used when units vary more than chance (applied only if significant) "
        "[additive]",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed [0]")
    p.add_argument("--no-report", action="store_true", help="write CSVs only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _records(args: argparse.Namespace) -> Path:
    from skinml.qc.pipeline import QcOptions, run_records_qc
    from skinml.qc.records import QcColumns, load_records, read_name_list
    from skinml.vocabulary import malignant_codes

    columns = QcColumns(
        hospital=args.hospital_column,
        case=args.case_column,
        image=args.image_column,
        diagnosis=args.diagnosis_column,
        reference=args.reference_column,
        ai=args.ai_column,
        device=args.device_column,
        date=args.date_column,
        covariates=tuple(_split(args.covariates)),
    )
    records = load_records(
        args.records,
        columns,
        hospitals=read_name_list(args.hospitals),
        vocabulary=read_name_list(args.diagnoses),
    )
    predictions = args.predictions
    if args.model is not None:
        predictions = _run_model(args, records)
    opts = QcOptions(
        malignant=frozenset(_split(args.malignant)) or malignant_codes(),
        overdispersion=args.overdispersion,
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        image_root=args.image_root,
        predictions=predictions,
        per_diagnosis=not args.no_per_diagnosis,
        cusum_odds_ratio=args.cusum_odds_ratio,
        progress=not args.quiet,
        report=not args.no_report,
        simulated=args.simulated,
    )
    res = run_records_qc(records, args.out, opts)
    s = res.summary
    print(
        f"skinml-qc: {s['records_used']} records, {s['hospitals']} hospitals, "
        f"{s['rows_excluded_from_all']} rows excluded, {s['flags']} flags"
    )
    _print_summary(s["summary_lines"])
    return args.out


def _print_summary(lines: list[str]) -> None:
    """The report's summary lines that change how to read the numbers (not the counts)."""
    for line in lines:
        if line.startswith(("CAUTION", "Malignancy indicators", "These records are SIMULATED")):
            print(line)


def _run_model(args: argparse.Namespace, records) -> Path:
    from skinml.errors import ConfigError

    if args.image_root is None:
        raise ConfigError(
            "--model needs --image-root (where the images are)", fix="add --image-root DIR"
        )
    try:
        from skinml.predict import run_predictions
    except ImportError as exc:
        raise ConfigError(
            f"the predictor (skinml.predict) is not available: {exc}",
            fix="install skinml with the predictor, or pass --predictions CSV",
        ) from exc
    images = [str(Path(args.image_root) / str(p)) for p in records.frame["image"].dropna().unique()]
    args.out.mkdir(parents=True, exist_ok=True)
    out_csv = args.out / "predictions.csv"
    run_predictions(
        args.model, images, out_csv, batch_size=args.batch_size, progress=not args.quiet
    )
    return out_csv


def _rates(args: argparse.Namespace) -> Path:
    from skinml.qc.pipeline import run_rates_qc
    from skinml.qc.rates import load_counts

    strata = _split(args.strata)
    counts, excluded = load_counts(
        args.counts,
        hospital=args.hospital_column,
        events=args.events_column,
        exposure=args.exposure_column,
        strata=strata,
    )
    _, flags = run_rates_qc(
        counts,
        excluded,
        args.out,
        strata=strata,
        per=args.per,
        overdispersion=args.overdispersion,
        indicator=args.indicator,
        source=str(args.counts),
        report=not args.no_report,
    )
    print(
        f"skinml-qc: {counts['hospital'].nunique()} units, {len(excluded)} rows excluded, "
        f"{len(flags)} flags"
    )
    return args.out


def _chile(args: argparse.Namespace) -> Path:
    from skinml.qc.examples import CHILE_NOTE, chile_referral_counts
    from skinml.qc.pipeline import run_rates_qc
    from skinml.qc.rates import validate_counts

    strata = ["sex", "age_band"]
    raw = chile_referral_counts(args.folder)
    counts, excluded = validate_counts(raw, strata=strata, source=str(args.folder))
    _, flags = run_rates_qc(
        counts,
        excluded,
        args.out,
        strata=strata,
        per=args.per,
        overdispersion=args.overdispersion,
        indicator="psoriasis referrals",
        source=str(Path(args.folder) / "casos_servicio.csv"),
        report=not args.no_report,
        notes=[CHILE_NOTE],
    )
    print(
        f"skinml-qc: {counts['hospital'].nunique()} health services, "
        f"{int(counts['events'].sum()):,} referrals, {len(flags)} flags"
    )
    return args.out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skinml-qc``; returns the exit status (2 for bad input)."""
    from skinml.cli_errors import run_command

    args = build_parser().parse_args(argv)
    outs: list[Path] = []
    command = {"records": _records, "rates": _rates, "chile-referrals": _chile}[args.command]
    status = run_command("skinml-qc", lambda: outs.append(command(args)))
    if status:
        return status
    out = outs[0]
    report = "" if args.no_report else "report.html, "
    print(
        f"Outputs written to {out.resolve()}: flags.csv, {report}excluded_rows.csv, "
        "per-analysis CSVs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
