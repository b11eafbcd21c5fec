"""Experiment: does the AI-support report recover planted effects? (SIMULATED trainees)

A 60-case teaching set is built from real HAM10000 test images (DermaMNIST test
split, balanced over the 7 diagnoses). Its AI is SIMULATED and wrong on purpose on
a planted quarter of the cases (confidently: melanoma called nevus, nevus called
melanoma, ...). 48 SIMULATED trainees in four experience bands take the AI-support
quiz: each has a planted skill (unaided accuracy) and a planted reliance (the chance
of switching to the AI's answer where it differs from their own), novices relying
most, as Tschandl et al. (Nat Med 2020) observed. Their answers are written as
quiz exports (the CSV quiz_ai_support.html writes) and scored with ``score_session``,
exactly as ``skinml-teach score`` does; the recovered numbers are compared with the
planted ones.

Run from the repository root:

    .venv/bin/python experiments/teach_ai_support/run.py --shared-data ../shared/data

Writes ``results.json`` next to this file and the reports to
``outputs/teach_ai_support/`` (ai_support.html, one report per trainee).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.data.manifest import Manifest
from skinml.teach.build import build_teaching_set
from skinml.teach.pipeline import score_session
from skinml.teach.quiz import write_quiz
from skinml.teach.simulate import simulate_ai_support_session, simulate_predictions

HERE = Path(__file__).resolve().parent
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
#: The planted faulty AI's answer per true diagnosis (the confusions that matter clinically).
FAULTY = {
    "mel": "nv",
    "bcc": "bkl",
    "akiec": "bkl",
    "nv": "mel",
    "bkl": "mel",
    "df": "nv",
    "vasc": "nv",
}
#: (band label, years of training, planted unaided accuracy, planted follow probability)
BANDS = (
    ("< 1 year", 0.5, 0.40, 0.80),
    ("1 to < 3 years", 2.0, 0.55, 0.55),
    ("3 to < 6 years", 4.0, 0.70, 0.35),
    ("6 years or more", 8.0, 0.80, 0.20),
)


def ham_test(shared: Path) -> Manifest:
    root = shared / "ham10000_images_200x150"
    d = pd.read_csv(root / "manifest.csv")
    d = d[d["dermamnist_split"] == "test"]
    frame = pd.DataFrame(
        {"image": d["file"], "label": d["dx"], "lesion_id": d["lesion_id"], "split": "test"}
    ).reset_index(drop=True)
    return Manifest(frame, root, "ham10000_test")


def plant_faulty_ai(folder: Path, share: float, seed: int) -> pd.DataFrame:
    """Make the set's AI wrong on purpose on ``share`` of the cases (per diagnosis).

    The AI's answer on those cases becomes :data:`FAULTY`'s confusion with 85%
    probability; on every other case it becomes right (the top probability moved to the
    key's class). ai_answers.csv is rewritten, so the quiz shows and the scoring uses
    the same planted AI.
    """
    rng = np.random.default_rng(seed)
    ref = pd.read_csv(folder / "reference.csv")
    ai = pd.read_csv(folder / "ai_answers.csv")
    assert ai["case"].tolist() == ref["case"].tolist()
    faulty = np.zeros(len(ref), dtype=bool)
    for _, idx in ref.groupby("diagnosis").groups.items():
        idx = np.asarray(list(idx))
        faulty[rng.choice(idx, size=round(share * len(idx)), replace=False)] = True
    probs = rng.dirichlet(np.ones(len(CLASSES)), len(ref)) * 0.15
    answer = np.where(faulty, ref["diagnosis"].map(FAULTY), ref["diagnosis"])
    for k, c in enumerate(CLASSES):
        probs[:, k] += np.where(answer == c, 0.85, 0.0)
    for k, c in enumerate(CLASSES):
        ai[f"p_{c}"] = np.round(probs[:, k], 5)
    ai["diagnosis"] = answer
    ai["confidence"] = probs.max(axis=1).round(5)
    mal = [CLASSES.index(c) for c in ("akiec", "bcc", "mel")]
    ai["malignant_probability"] = probs[:, mal].sum(axis=1).round(5)
    ai["malignant_flag"] = ai["malignant_probability"] >= 0.3
    ai.to_csv(folder / "ai_answers.csv", index=False)
    return ref.assign(ai=answer, ai_faulty=faulty)


def expected_change(accuracy: float, follow: float, ai_error: float) -> float:
    """Planted accuracy change (see ``simulate_ai_support_session``)."""
    return (1 - ai_error) * (1 - accuracy) * follow - ai_error * accuracy * follow


def provenance(args: argparse.Namespace) -> dict:
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], capture_output=True, text=True, check=True, cwd=HERE
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    import skinml

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_commit": git("rev-parse", "HEAD"),
        "skinml_version": skinml.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-data", type=Path, default=HERE.parents[1].parent / "shared/data")
    ap.add_argument("--n-cases", type=int, default=60)
    ap.add_argument("--per-band", type=int, default=12, help="SIMULATED trainees per band")
    ap.add_argument("--faulty-share", type=float, default=0.25)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE.parents[1] / "outputs" / "teach_ai_support")
    args = ap.parse_args()
    t0 = time.perf_counter()
    manifest = ham_test(args.shared_data)
    images = [str(manifest.root / p) for p in manifest.frame["image"]]
    work = args.out
    work.mkdir(parents=True, exist_ok=True)
    pred_csv = work / "predictions_simulated.csv"
    simulate_predictions(images, manifest.frame["label"], CLASSES, seed=args.seed).to_csv(
        pred_csv, index=False
    )
    ts = build_teaching_set(
        manifest,
        work / "set",
        args.n_cases,
        seed=args.seed,
        ai_predictions=pred_csv,
        overwrite=True,
        progress=False,
        quiz="plain",
    )
    key = plant_faulty_ai(ts.folder, args.faulty_share, args.seed)
    write_quiz(ts.folder, ai_support=True, title="SIMULATED AI-support study")
    ai_error = float(key["ai_faulty"].mean())

    answers_dir = work / "answers"
    answers_dir.mkdir(exist_ok=True)
    for old in answers_dir.glob("*.csv"):
        old.unlink()
    files = []
    for b, (_label, years, acc, follow) in enumerate(BANDS):
        for j in range(args.per_band):
            name = f"simulated_{b}{j:02d}"
            frame = simulate_ai_support_session(
                key["case"],
                key["diagnosis"],
                key["ai"],
                CLASSES,
                trainee=name,
                accuracy=acc,
                follow=follow,
                years_training=years,
                fingerprint=ts.card["fingerprint"],
                seed=1000 * (args.seed + 1) + 100 * b + j,
            )
            files.append(answers_dir / f"answers_{name}.csv")
            frame.to_csv(files[-1], index=False)

    note = (
        "SIMULATED trainees and a SIMULATED AI (wrong on purpose on "
        f"{int(key['ai_faulty'].sum())} of {len(key)} cases) on real HAM10000 test images."
    )
    out = score_session(
        ts.reference_csv,
        files,
        work / "reports",
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        reports="latest",
        note=note,
        progress=False,
    )
    groups = out.ai_effect_groups.set_index("group")

    def ci(row: pd.Series, name: str) -> list[float]:
        return [round(float(row[f"{name}_ci_low"]), 4), round(float(row[f"{name}_ci_high"]), 4)]

    bands = []
    for label, _years, acc, follow in BANDS:
        g = groups.loc[label]
        planted_change = expected_change(acc, follow, ai_error)
        bands.append(
            {
                "band": label,
                "n_trainees": int(g["n_trainees"]),
                "planted_unaided_accuracy": acc,
                "recovered_unaided_accuracy": round(float(g["unaided_accuracy"]), 4),
                "planted_follow_probability": follow,
                "recovered_over_reliance": round(float(g["over_reliance"]), 4),
                "recovered_over_reliance_ci95": ci(g, "over_reliance"),
                "over_reliance_ci_contains_planted": bool(
                    g["over_reliance_ci_low"] <= follow <= g["over_reliance_ci_high"]
                ),
                "planted_under_reliance": round(1 - follow, 4),
                "recovered_under_reliance": round(float(g["under_reliance"]), 4),
                "recovered_under_reliance_ci95": ci(g, "under_reliance"),
                "under_reliance_ci_contains_planted": bool(
                    g["under_reliance_ci_low"] <= 1 - follow <= g["under_reliance_ci_high"]
                ),
                "planted_accuracy_change": round(planted_change, 4),
                "recovered_accuracy_change": round(float(g["accuracy_change"]), 4),
                "recovered_accuracy_change_ci95": ci(g, "accuracy_change"),
                "accuracy_change_ci_contains_planted": bool(
                    g["accuracy_change_ci_low"] <= planted_change <= g["accuracy_change_ci_high"]
                ),
                "accuracy_change_on_cases_ai_got_wrong": round(
                    float(g["accuracy_where_ai_wrong_change"]), 4
                ),
                "accuracy_change_on_cases_ai_got_wrong_ci95": ci(
                    g, "accuracy_where_ai_wrong_change"
                ),
                "planted_accuracy_change_on_cases_ai_got_wrong": round(-acc * follow, 4),
                "malignant_sensitivity_change": round(float(g["malignant_sensitivity_change"]), 4),
                "malignant_sensitivity_change_ci95": ci(g, "malignant_sensitivity_change"),
                "kappa_change": round(float(g["kappa_change"]), 4),
                "kappa_change_ci95": ci(g, "kappa_change"),
            }
        )
    everyone = groups.loc["all trainees"]
    n_reliance_inside = sum(
        b["over_reliance_ci_contains_planted"] + b["under_reliance_ci_contains_planted"]
        for b in bands
    )
    changes = [b["recovered_accuracy_change"] for b in bands]
    results = {
        "what": "AI-support report on SIMULATED trainees with planted skill and reliance and "
        "a SIMULATED AI wrong on purpose on some cases; real HAM10000 test images. "
        "Recovered = what skinml-teach score reports; CIs are 95% (two-way bootstrap over "
        "trainees and cases for changes, trainee bootstrap for reliance rates).",
        "simulated": True,
        "data": {
            "images": "HAM10000 DermaMNIST test split (shared/data/ham10000_images_200x150)",
            "n_cases": len(key),
            "cases_per_diagnosis": key["diagnosis"].value_counts().sort_index().to_dict(),
            "ai_wrong_on_purpose": int(key["ai_faulty"].sum()),
            "ai_wrong_on_purpose_by_diagnosis": key[key["ai_faulty"]]["diagnosis"]
            .value_counts()
            .sort_index()
            .to_dict(),
            "ai_accuracy": round(1 - ai_error, 4),
            "set_fingerprint": ts.card["fingerprint"],
        },
        "trainees": {"n": len(files), "per_band": args.per_band, "bands": list(BANDS)},
        "seed": args.seed,
        "n_bootstrap": args.n_bootstrap,
        "cohort": {
            "unaided_accuracy": round(float(everyone["unaided_accuracy"]), 4),
            "aided_accuracy": round(float(everyone["aided_accuracy"]), 4),
            "accuracy_change": round(float(everyone["accuracy_change"]), 4),
            "accuracy_change_ci95": ci(everyone, "accuracy_change"),
            "planted_accuracy_change": round(
                float(np.mean([expected_change(a, f, ai_error) for _, _, a, f in BANDS])),
                4,
            ),
            "answers_changed_to_correct": int(everyone["n_changed_to_correct"]),
            "answers_changed_to_incorrect": int(everyone["n_changed_to_incorrect"]),
            "accuracy_change_on_cases_ai_got_right": round(
                float(everyone["accuracy_where_ai_right_change"]), 4
            ),
            "accuracy_change_on_cases_ai_got_wrong": round(
                float(everyone["accuracy_where_ai_wrong_change"]), 4
            ),
            "accuracy_change_on_cases_ai_got_wrong_ci95": ci(
                everyone, "accuracy_where_ai_wrong_change"
            ),
        },
        "by_experience": bands,
        "checks": {
            "gain_largest_for_least_experienced": bool(changes[0] == max(changes)),
            "gain_decreases_with_experience": bool(np.all(np.diff(changes) < 0)),
            "faulty_ai_misled_every_band": bool(
                all(b["accuracy_change_on_cases_ai_got_wrong_ci95"][1] < 0 for b in bands)
            ),
            "planted_reliance_rates_inside_their_95ci": f"{n_reliance_inside} of {2 * len(bands)}",
            "planted_accuracy_changes_inside_their_95ci": (
                f"{sum(b['accuracy_change_ci_contains_planted'] for b in bands)} of {len(bands)}"
            ),
        },
        "outputs": {
            "instructor_page": str(out.ai_support_html),
            "per_trainee_csv": str(out.ai_effect_csv),
            "by_experience_csv": str(out.ai_effect_groups_csv),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "provenance": provenance(args),
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"cohort": results["cohort"], "checks": results["checks"]}, indent=2))
    for b in bands:
        print(
            f"{b['band']:>16}: change {b['recovered_accuracy_change']:+.3f} "
            f"{b['recovered_accuracy_change_ci95']} (planted {b['planted_accuracy_change']:+.3f}); "
            f"over-reliance {b['recovered_over_reliance']:.2f} "
            f"{b['recovered_over_reliance_ci95']} (planted {b['planted_follow_probability']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
