"""``skinml-teach``: build dermoscopy teaching sets and score residents on them.

Thin entry point: parse arguments, call :mod:`skinml.teach`, say where the
outputs are. Bad input is reported as one message naming file, row and value
(exit code 2); nothing is scored until every problem is fixed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  # 40 cases from the test split, balanced over diagnoses, 30% hard (needs AI answers)
  skinml-teach build manifest.csv -n 40 --split test --out set1 --ai-predictions predictions.csv
  skinml-teach build manifest.csv -n 40 --out set1 --model model.onnx --seed 1

  # after the session: one CSV per trainee (file name = trainee) or one long CSV
  skinml-teach score --reference set1/reference.csv --answers alice.csv bob.csv --out reports1
  skinml-teach score --reference set1/reference.csv --answers all_answers.csv \\
      --ai set1/ai_answers.csv --images set1/cases --out reports1 \\
      --reader-scores ../shared/data/dermfm_zero_todiv_reader_scores

hand out only cases/ and answer_sheet.csv; reference.csv and ai_answers.csv are the key.
"""

BUILD_EPILOG = """\
examples:
  skinml-teach build manifest.csv -n 40 --out set1
  skinml-teach build manifest.csv -n 40 --out set1 --split test --hard-fraction 0.5 \\
      --ai-predictions predictions.csv --malignant mel,bcc,akiec
  skinml-teach build manifest.csv -n 60 --out set2 --model model.onnx --allocation proportional

the manifest is a skinml image manifest CSV (columns image, label, lesion_id, ...); classes are
its label column. Hard cases are those where the AI gave the true diagnosis a probability below
0.5; without --model or --ai-predictions every case has unknown difficulty.

outputs (in --out): cases/case_001.jpg... (pixels only, no metadata), answer_sheet.csv
(case, diagnosis, confidence: empty), reference.csv (case, diagnosis, malignant,
source_image, lesion_id, difficulty), ai_answers.csv (when an AI is given),
teaching_set.json (options, classes, counts) and SHA256SUMS.
"""

SCORE_EPILOG = """\
examples:
  skinml-teach score --reference set1/reference.csv --answers alice.csv bob.csv --out reports
  skinml-teach score --reference set1/reference.csv --answers cohort.csv --reports all --out r

answer files: columns case, diagnosis, and optionally confidence (0-1 or 0-100), trainee
(for one long file) and session (e.g. a date, for progress across sessions). Diagnoses may be
codes (mel, nv, ...) or synonyms ("melanoma", "naevus", "basal cell carcinoma", ...; any case)
from skinml's one diagnosis table (`skinml-data vocabulary` prints it); a blank diagnosis or a
missing row is an unanswered case and counts as wrong.

outputs (in --out): summary.csv (one row per trainee, latest session), sessions.csv (one row per
trainee and session), per_diagnosis.csv, missed_malignancies.csv, cohort.json and
report_<trainee>.html (self-contained: open it in any browser).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skinml-teach",
        description="Build dermoscopy teaching sets and score trainees against the key, the AI "
        "and their cohort.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser(
        "build",
        help="make a teaching set from an image manifest",
        description="Make a teaching set: N anonymised cases stratified by "
        "diagnosis, a key, an answer sheet and the AI's answers.",
        epilog=BUILD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("manifest", type=Path, help="image manifest CSV (image, label, lesion_id, ...)")
    b.add_argument("-n", "--n-cases", type=int, required=True, help="number of cases")
    b.add_argument("--out", type=Path, required=True, help="output folder")
    b.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    b.add_argument(
        "--hard-fraction",
        type=float,
        default=0.3,
        help="share of hard cases per diagnosis (default 0.3; needs an AI)",
    )
    ai = b.add_mutually_exclusive_group()
    ai.add_argument("--model", type=Path, help="exported skinml .onnx model to run on candidates")
    ai.add_argument("--ai-predictions", type=Path, help="skinml-predict CSV for the images")
    b.add_argument(
        "--malignant",
        default=None,
        help="comma-separated malignant diagnoses (default: the model's, else mel,bcc,akiec)",
    )
    b.add_argument(
        "--allocation",
        choices=("balanced", "proportional"),
        default="balanced",
        help="cases per diagnosis: as equal as possible (default) or by prevalence",
    )
    b.add_argument("--split", default=None, help="use only manifest rows of this split")
    b.add_argument("--overwrite", action="store_true", help="replace an existing set in --out")

    s = sub.add_parser(
        "score",
        help="score answer sheets and write reports",
        description="Score trainees against the key, the AI and each other; write "
        "one HTML report per trainee and CSV tables for the instructor.",
        epilog=SCORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--reference", type=Path, required=True, help="the set's reference.csv")
    s.add_argument("--answers", type=Path, nargs="+", required=True, help="answer CSV(s)")
    s.add_argument(
        "--ai",
        type=Path,
        default=None,
        help="ai_answers.csv (default: the one beside the reference, if present)",
    )
    s.add_argument(
        "--images",
        type=Path,
        default=None,
        help="case images folder (default: cases/ beside the reference)",
    )
    s.add_argument("--out", type=Path, required=True, help="report folder")
    s.add_argument(
        "--reader-scores",
        type=Path,
        default=None,
        help="dermfm_zero_todiv_reader_scores folder, to place trainees among "
        "clinicians (default: $SKINML_SHARED_DATA/dermfm_zero_todiv_reader_scores)",
    )
    s.add_argument(
        "--n-bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples for κ intervals (default 1000; 0 = none)",
    )
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    s.add_argument(
        "--reports",
        choices=("latest", "all", "none"),
        default="latest",
        help="HTML reports: one per trainee's latest session (default), one per session, or none",
    )
    s.add_argument("--note", default="", help="a line shown at the top of every report")
    return parser


def _build(args: argparse.Namespace) -> int:
    from skinml.data.manifest import read_manifest
    from skinml.teach.build import build_teaching_set

    malignant = None
    if args.malignant:
        malignant = [m.strip() for m in args.malignant.split(",") if m.strip()]
    manifest = read_manifest(args.manifest)
    ts = build_teaching_set(
        manifest,
        args.out,
        args.n_cases,
        seed=args.seed,
        hard_fraction=args.hard_fraction,
        malignant=malignant,
        model=args.model,
        ai_predictions=args.ai_predictions,
        allocation=args.allocation,
        split=args.split,
        overwrite=args.overwrite,
    )
    card = ts.card
    print(f"teaching set with {card['n_cases']} cases written to {ts.folder}")
    print(f"  per diagnosis: {card['cases_per_diagnosis']}")
    print(f"  per difficulty: {card['cases_per_difficulty']}")
    if card["excluded_candidates"]["n"]:
        print(
            f"  {card['excluded_candidates']['n']} candidates were not eligible "
            f"(see {ts.folder / 'teaching_set.json'})"
        )
    print(f"  hand out: {ts.folder / 'cases'} and {ts.answer_sheet}")
    print(f"  keep: {ts.reference_csv}" + (f", {ts.ai_answers}" if ts.ai_answers else ""))
    return 0


def _score(args: argparse.Namespace) -> int:
    from skinml.teach.pipeline import score_session

    out = score_session(
        args.reference,
        args.answers,
        args.out,
        ai=args.ai,
        images=args.images,
        reader_scores=args.reader_scores,
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        reports=args.reports,
        note=args.note,
    )
    summary = out.scores.summary().iloc[out.scores.latest]
    print(f"scored {len(summary)} trainees on {len(out.scores.reference.cases)} cases")
    for _, r in summary.iterrows():
        print(
            f"  {r['trainee']}: accuracy {r['accuracy']:.0%}, missed malignancies "
            f"{r['n_missed_malignant']}/{r['n_malignant_cases']}, κ {r['kappa']:.2f}"
        )
    print(f"instructor summary: {out.summary_csv}")
    print(f"all tables and {len(out.reports)} reports in {Path(args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skinml-teach``."""
    from skinml.cli_errors import run_command

    args = build_parser().parse_args(argv)
    body = _build if args.command == "build" else _score
    return run_command(f"skinml-teach {args.command}", lambda: body(args))


if __name__ == "__main__":
    sys.exit(main())
