"""Benchmark: score 500 SIMULATED trainees x 100 real HAM10000 test cases.

Run from the repository root:

    .venv/bin/python experiments/teach_scoring_speed/run.py \
        --shared-data ../shared/data --out experiments/teach_scoring_speed

Writes ``results.json`` next to this file (or to ``--out``). Timings are wall-clock
seconds, the median of ``--repeats`` runs, on whatever machine runs this.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.data.manifest import Manifest
from skinml.teach.ai_answers import read_ai_answers
from skinml.teach.answers import read_answers
from skinml.teach.build import build_teaching_set
from skinml.teach.pipeline import score_session
from skinml.teach.reference import read_reference
from skinml.teach.report import trainee_report
from skinml.teach.results import score_teaching_set
from skinml.teach.simulate import simulate_answers, simulate_predictions

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def ham_test(shared: Path) -> Manifest:
    root = shared / "ham10000_images_200x150"
    d = pd.read_csv(root / "manifest.csv")
    d = d[d["dermamnist_split"] == "test"]
    frame = pd.DataFrame({"image": d["file"], "label": d["dx"], "lesion_id": d["lesion_id"]})
    return Manifest(frame.reset_index(drop=True), root, "ham10000_test")


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), [round(x, 3) for x in times], out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--trainees", type=int, default=500)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t_import = time.perf_counter()
    # first-import cost of statsmodels, measured apart from the scoring
    import statsmodels.stats.contingency_tables
    import statsmodels.stats.proportion  # noqa: F401

    import_s = time.perf_counter() - t_import
    work = Path(tempfile.mkdtemp(prefix="teach_speed_"))
    manifest = ham_test(args.shared_data)
    images = [str(manifest.root / p) for p in manifest.frame["image"]]
    preds = simulate_predictions(images, manifest.frame["label"], CLASSES, accuracy=0.75, seed=1)
    preds.to_csv(work / "predictions_simulated.csv", index=False)
    t = time.perf_counter()
    ts = build_teaching_set(
        manifest,
        work / "set",
        args.cases,
        seed=args.seed,
        ai_predictions=work / "predictions_simulated.csv",
        progress=False,
    )
    build_s = time.perf_counter() - t
    ref = read_reference(ts.reference_csv)
    rng = np.random.default_rng(args.seed)
    acc = rng.uniform(0.45, 0.9, args.trainees)
    sheets = [
        simulate_answers(
            ref.cases,
            ref.diagnosis,
            ref.classes,
            accuracy=a,
            unanswered=0.02,
            seed=args.seed + i,
            trainee=f"simulated_{i:04d}",
        )
        for i, a in enumerate(acc)
    ]
    answers_csv = work / "answers_simulated.csv"
    pd.concat(sheets).to_csv(answers_csv, index=False)

    read_s, read_runs, matrix = timed(lambda: read_answers([answers_csv], ref), args.repeats)
    ai = read_ai_answers(ts.ai_answers, ref)
    score_s, score_runs, res = timed(
        lambda: score_teaching_set(ref, matrix, ai, n_bootstrap=args.n_bootstrap, seed=args.seed),
        args.repeats,
    )
    score0_s, _, _ = timed(lambda: score_teaching_set(ref, matrix, ai, n_bootstrap=0), args.repeats)
    end_s, end_runs, _ = timed(
        lambda: score_session(
            ts.reference_csv,
            [answers_csv],
            work / "scores",
            n_bootstrap=args.n_bootstrap,
            seed=args.seed,
            reports="none",
            progress=False,
        ),
        args.repeats,
    )
    report_s, report_runs, _ = timed(
        lambda: trainee_report(res, 0).write(work / "report.html"), args.repeats
    )

    # The per-trainee loop this replaces: skinml.stats.cohen_kappa (sklearn per resample).
    from skinml.stats import cohen_kappa

    n_loop = 3
    t = time.perf_counter()
    for i in range(n_loop):
        labelled = np.where(matrix.codes[i] < 0, "unanswered", matrix.codes[i].astype(str))
        cohen_kappa(labelled, ref.codes.astype(str), n_bootstrap=args.n_bootstrap, seed=0)
    loop_per_trainee = (time.perf_counter() - t) / n_loop

    summary = res.summary()
    results = {
        "what": "skinml-teach scoring speed: SIMULATED trainees on real HAM10000 test cases",
        "machine": f"{platform.node()} ({platform.machine()}, shared 2-core container)",
        "python": platform.python_version(),
        "n_trainees": args.trainees,
        "n_cases": args.cases,
        "n_bootstrap_kappa": args.n_bootstrap,
        "seed": args.seed,
        "repeats": args.repeats,
        "seconds_first_import_statsmodels": round(import_s, 3),
        "seconds_build_teaching_set_100_cases": round(build_s, 3),
        "seconds_read_and_check_answers_median": round(read_s, 3),
        "seconds_read_runs": read_runs,
        "seconds_score_core_with_bootstrap_median": round(score_s, 3),
        "seconds_score_core_runs": score_runs,
        "seconds_score_core_no_bootstrap_median": round(score0_s, 3),
        "seconds_score_session_end_to_end_no_reports_median": round(end_s, 3),
        "seconds_score_session_runs": end_runs,
        "seconds_one_html_report_median": round(report_s, 3),
        "seconds_one_html_report_runs": report_runs,
        "seconds_per_trainee_skinml_stats_cohen_kappa_loop": round(loop_per_trainee, 3),
        "extrapolated_seconds_loop_for_all_trainees": round(loop_per_trainee * args.trainees, 1),
        "check_mean_accuracy_simulated": round(float(summary["accuracy"].mean()), 4),
        "check_mean_target_accuracy": round(float(acc.mean() * 0.98), 4),
        "check_ai_accuracy": round(float(summary["ai_accuracy"].iloc[0]), 4),
        "cohort_krippendorff_alpha": round(res.agreement.krippendorff_alpha, 4),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
