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
  # 40 cases from the test split, balanced over diagnoses, 30% hard; quiz.html for trainees and,
  # with an AI, quiz_ai_support.html (own answer, then the AI's probabilities and heatmap)
  skinml-teach build manifest.csv -n 40 --split test --out set1 --model model.onnx
  skinml-teach build manifest.csv -n 40 --out set1 --ai-predictions predictions.csv --seed 1

  # trainees open set1/quiz.html (or quiz_ai_support.html) in any browser, offline, and export
  # answers_<trainee>_<date>.csv; score those files as they are
  skinml-teach score --reference set1/reference.csv --answers answers_*.csv --out reports1
  skinml-teach score --reference set1/reference.csv --answers alice.csv bob.csv --out reports1 \\
      --reader-scores ../shared/data/dermfm_zero_todiv_reader_scores

  # (re)write a quiz for an existing set
  skinml-teach quiz set1 --ai-support --model model.onnx

hand out only the quiz (or cases/ and answer_sheet.csv); reference.csv, ai_answers.csv and
teaching_set.json are the instructor's.
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

quiz (--quiz): quiz.html is one self-contained page (images embedded, no network) where a
trainee enters an ID and optionally years of training, answers each case (diagnosis from the
set's classes, confidence), sees progress, can close the browser and continue later, and
exports a CSV that `skinml-teach score` reads as it is. quiz_ai_support.html runs each case in
two steps: the own answer is locked, then the AI's calibrated probabilities and (with --model)
its CAM heatmap are shown and a final answer is given; both answers and the seconds spent are
exported. Only the case images, the class list and the set's fingerprint (plus, in AI mode,
the AI's outputs) go into a quiz; never the key or source image names.

outputs (in --out): cases/case_001.jpg... (pixels only, no metadata), quiz.html,
quiz_ai_support.html (with an AI), answer_sheet.csv (case, diagnosis, confidence: empty),
reference.csv (case, diagnosis, malignant, source_image, lesion_id, difficulty), ai_answers.csv
(when an AI is given), teaching_set.json (options, classes, counts, fingerprint) and SHA256SUMS.
"""

QUIZ_EPILOG = """\
examples:
  skinml-teach quiz set1                                 # plain quiz: set1/quiz.html
  skinml-teach quiz set1 --ai-support --model model.onnx # set1/quiz_ai_support.html

the AI-support quiz shows the AI's probabilities from set1/ai_answers.csv and, with --model (the
exported .onnx file), a CAM heatmap of each case drawn by the torch-free predictor.
"""

SCORE_EPILOG = """\
examples:
  skinml-teach score --reference set1/reference.csv --answers alice.csv bob.csv --out reports
  skinml-teach score --reference set1/reference.csv --answers cohort.csv --reports all --out r

answer files: a quiz export as it is, or columns case, diagnosis, and optionally confidence
(0-1 or 0-100), trainee (for one long file) and session (a date in any common format, ordered as
a date, for progress across sessions). A quiz export also carries set_fingerprint (answers from
another set are refused), years_training, seconds per case and, from the AI-support quiz,
unaided_diagnosis (before the AI) beside the final diagnosis. Diagnoses may be
codes (mel, nv, ...) or synonyms ("melanoma", "naevus", "basal cell carcinoma", ...; any case)
from skinml's one diagnosis table (`skinml-data vocabulary` prints it); a blank diagnosis or a
missing row is an unanswered case and counts as wrong.

what the AI changed (AI-support quiz exports): per trainee and for the cohort, accuracy,
malignant sensitivity and kappa on one's own vs with the AI (change with a paired bootstrap 95%
CI; exact McNemar test per trainee), answers changed toward correct and toward incorrect,
over-reliance (switched to a wrong AI) and under-reliance (kept one's own answer against a right
AI), accuracy on the cases the AI got right and wrong, and all of it by years of training.

outputs (in --out): summary.csv (one row per trainee, latest session), sessions.csv (one row per
trainee and session), per_diagnosis.csv, missed_malignancies.csv, cohort.json,
report_<trainee>.html (self-contained: open it in any browser) and, with AI-support exports,
ai_effect.csv, ai_effect_by_experience.csv and ai_support.html (the instructor's page).
Cohort percentiles are shown from 5 trainees on; published reference levels (DermaChallenge,
TODIV) only for a set with the same classes as their test.
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
    b.add_argument(
        "--quiz",
        choices=("auto", "plain", "ai-support", "both", "none"),
        default="auto",
        help="browser quizzes to write: auto (default) = quiz.html, plus quiz_ai_support.html "
        "when an AI is given; ai-support needs --model (heatmaps) or --ai-predictions",
    )

    q = sub.add_parser(
        "quiz",
        help="(re)write the browser quiz of a teaching set",
        description="Write quiz.html (or quiz_ai_support.html) for a built teaching set: one "
        "offline page trainees answer in and export from.",
        epilog=QUIZ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("set", type=Path, help="the teaching-set folder written by build")
    q.add_argument(
        "--ai-support",
        action="store_true",
        help="two steps per case: own answer, then the AI's probabilities (and heatmap) and a "
        "final answer",
    )
    q.add_argument(
        "--model", type=Path, default=None, help="exported .onnx model, for heatmaps (AI mode)"
    )
    q.add_argument("--title", default=None, help="page title (default: the case count)")

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
        quiz=args.quiz.replace("-", "_"),
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
    quizzes = [p for p in (ts.quiz, ts.quiz_ai_support) if p is not None]
    if quizzes:
        print(f"  hand out: {' or '.join(str(p) for p in quizzes)} (opens offline in a browser)")
    else:
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
    if out.ai_effect_groups is not None:
        g = out.ai_effect_groups.iloc[0]
        lo, hi = g["accuracy_change_ci_low"] * 100, g["accuracy_change_ci_high"] * 100
        print(
            f"AI support ({int(g['n_trainees'])} trainees): accuracy {g['unaided_accuracy']:.0%} "
            f"on their own -> {g['aided_accuracy']:.0%} with the AI (change "
            f"{g['accuracy_change'] * 100:+.0f} points, 95% CI {lo:+.0f} to {hi:+.0f});"
            f" {int(g['n_changed_to_correct'])} answers changed to correct, "
            f"{int(g['n_changed_to_incorrect'])} to incorrect"
        )
        if out.ai_support_html is not None:
            print(f"  what the AI changed: {out.ai_support_html}")
    print(f"instructor summary: {out.summary_csv}")
    print(f"all tables and {len(out.reports)} reports in {Path(args.out)}")
    return 0


def _quiz(args: argparse.Namespace) -> int:
    from skinml.teach.quiz import write_quiz

    path = write_quiz(args.set, ai_support=args.ai_support, model=args.model, title=args.title)
    print(f"quiz written to {path}: hand it out (it opens offline in any browser)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skinml-teach``."""
    from skinml.cli_errors import run_command

    args = build_parser().parse_args(argv)
    body = {"build": _build, "score": _score, "quiz": _quiz}[args.command]
    return run_command(f"skinml-teach {args.command}", lambda: body(args))


if __name__ == "__main__":
    sys.exit(main())
