"""Summarise one experiment trained with several seeds: per-seed figures, mean and spread,
and optionally the ensemble of the runs whose predictions are still on disk.

Each positional argument is one seed's ``results.json`` as ``summarise_run.py`` wrote it.
The summary lists every headline key per seed (in the order given), with its mean and sample
standard deviation (MedMNIST+ reports seeds this way; a single run's bootstrap interval
measures the test sample, the spread measures training). ``--ensemble RUN_DIR ...``
averages the runs' calibrated test probabilities (``predictions_test.csv``, same images in
the same order) and evaluates the average exactly as ``skinml-train`` evaluates one run:
same metrics, same 95% intervals, same bootstrap clusters and seed.

Usage::

    .venv/bin/python scripts/summarise_seeds.py experiments/x/results.json \\
        experiments/x/seeds/seed1.json experiments/x/seeds/seed2.json \\
        --ensemble outputs/x/seed1 outputs/x/seed2 -o experiments/x/seeds/summary.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

KEYS = ("test_acc", "test_balanced_acc", "test_auc", "test_malignant_auc", "test_ece")


def seed_table(results: list[dict], keys: tuple[str, ...] = KEYS) -> dict:
    """Per-seed values of ``keys`` with their mean and sample sd (keys all runs have)."""
    seeds = [r["seed"] for r in results]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the results files repeat a seed: {seeds}")
    out: dict = {"seeds": seeds}
    for key in keys:
        values = [r.get(key) for r in results]
        if any(v is None for v in values):
            continue
        out[f"{key}_per_seed"] = values
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None
    return out


def _results(path: Path) -> dict:
    """One seed's results file, or a message naming the file and the command that writes it."""
    if not path.is_file():
        raise SystemExit(f"{path}: not found; write it with scripts/summarise_run.py RUN_DIR -o")
    results = json.loads(path.read_text())
    if "seed" not in results:
        raise SystemExit(f"{path}: no 'seed' key; expected a results.json of summarise_run.py")
    return results


def _run_file(run_dir: Path, name: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise SystemExit(f"{path}: not found; --ensemble needs finished skinml-train runs")
    return path


def _predictions(run_dir: Path):
    import pandas as pd

    return pd.read_csv(_run_file(run_dir, "predictions_test.csv"))


def ensemble(run_dirs: list[Path]) -> dict:
    """Evaluate the mean of the runs' calibrated test probabilities."""
    import yaml

    from skinml.evaluation.report import evaluate

    frames = [_predictions(d) for d in run_dirs]
    first = frames[0]
    prob_cols = [c for c in first.columns if c.startswith("p_")]
    for run_dir, frame in zip(run_dirs[1:], frames[1:], strict=True):
        if (
            list(frame["image"]) != list(first["image"])
            or [c for c in frame.columns if c.startswith("p_")] != prob_cols
        ):
            raise SystemExit(
                f"{run_dir}: its test images or classes differ from {run_dirs[0]}'s; "
                "an ensemble needs runs on the same split"
            )
    cfg = yaml.safe_load(_run_file(run_dirs[0], "resolved_config.yaml").read_text())
    classes = [c.removeprefix("p_") for c in prob_cols]
    probs = np.mean([f[prob_cols].to_numpy(dtype=float) for f in frames], axis=0)
    groups = first["patient_id"].to_numpy() if "patient_id" in first else None
    result = evaluate(
        first["label"].to_numpy(),
        probs,
        classes,
        list(cfg["data"]["malignant"]),
        groups=groups,
        n_bootstrap=int(cfg["evaluation"]["n_bootstrap"]),
        seed=int(cfg["seed"]),
    )
    out: dict = {"ensemble_runs": [str(d) for d in run_dirs], "ensemble_test_n": result.n}
    for name, short in (
        ("accuracy", "acc"),
        ("balanced_accuracy", "balanced_acc"),
        ("macro_auc", "auc"),
        ("malignant_auc", "malignant_auc"),
    ):
        ci = result.headline[name]
        out[f"ensemble_test_{short}"] = ci.value
        out[f"ensemble_test_{short}_ci95"] = [ci.ci_low, ci.ci_high]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="one results.json per seed")
    parser.add_argument(
        "--ensemble", nargs="+", type=Path, metavar="RUN_DIR", help="runs to average"
    )
    parser.add_argument("--what", default="", help="one line saying what was run")
    parser.add_argument("-o", "--out", type=Path, help="summary.json to write (default: print)")
    args = parser.parse_args()
    from summarise_run import emit  # scripts/ is sys.path[0] when run as a script

    from skinml.tracking.provenance import command_provenance

    summary: dict = {"what": args.what} if args.what else {}
    summary.update(seed_table([_results(p) for p in args.results]))
    summary["results_files"] = [str(p) for p in args.results]
    if args.ensemble:
        summary.update(ensemble(args.ensemble))
    summary["provenance"] = command_provenance()
    emit(summary, args.out)


if __name__ == "__main__":
    main()
