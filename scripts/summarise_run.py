"""Summarise a finished ``skinml-train`` run into an experiment's ``results.json``.

Reads what the run wrote (``metrics.json``, ``resolved_config.yaml``, the per-epoch
history in ``checkpoints/last.pt``, ``predictions_test.csv``) and writes the headline
figures under self-explaining keys, with their 95% bootstrap intervals, so that anyone
re-running the experiment can compare number for number. ``provenance`` says where the
figures came from: the training run's git commit, data fingerprint, packages and
``skinml-train`` command, and the commit and command of this summary.

``--one-vs-rest CLASS`` adds that class's one-vs-rest test AUC with a bootstrap interval
(e.g. ISIC 2017's melanoma and seborrheic-keratosis AUCs); with two or more classes the
mean of those AUCs is added, bootstrapped on the same resamples.

Usage::

    .venv/bin/python scripts/summarise_run.py outputs/dermamnist_28/<stamp> \\
        --time-file /tmp/d28.time -o experiments/dermamnist_28/results.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

import numpy as np

HEADLINE = {
    "accuracy": "acc",
    "balanced_accuracy": "balanced_acc",
    "macro_auc": "auc",
    "ece": "ece",
    "ece_before_calibration": "ece_before_calibration",
    "malignant_sensitivity": "malignant_sensitivity",
    "malignant_specificity": "malignant_specificity",
    "malignant_auc": "malignant_auc",
}


def time_file_figures(path: Path) -> dict[str, float]:
    """Wall time and peak RSS from GNU ``/usr/bin/time -v`` output."""
    text = path.read_text()
    out: dict[str, float] = {}
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    if m:
        h, mnt, s = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        out["wall_time_s"] = h * 3600 + mnt * 60 + s
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["peak_rss_mib"] = int(m.group(1)) / 1024
    return out


def one_vs_rest_aucs(
    predictions: Path, classes: list[str], n_bootstrap: int, seed: int
) -> dict[str, float]:
    """One-vs-rest AUC per class and their mean, with paired bootstrap intervals."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from skinml.stats import bootstrap_ci

    frame = pd.read_csv(predictions)
    missing = [c for c in classes if f"p_{c}" not in frame.columns]
    if missing:
        raise SystemExit(f"{predictions}: no probability column for {missing}")
    idx = np.arange(len(frame))
    groups = frame["patient_id"].to_numpy() if "patient_id" in frame else None

    def auc_of(name: str):
        hit = (frame["label"].to_numpy() == name).astype(int)
        score = frame[f"p_{name}"].to_numpy()
        return lambda rows: roc_auc_score(hit[rows], score[rows])

    fns = {name: auc_of(name) for name in classes}
    out: dict[str, float] = {}
    for name, fn in fns.items():
        ci = bootstrap_ci(fn, idx, n_bootstrap=n_bootstrap, seed=seed, groups=groups)
        out[f"test_auc_{name}"] = ci.value
        out[f"test_auc_{name}_ci95"] = [ci.ci_low, ci.ci_high]
    if len(classes) > 1:
        ci = bootstrap_ci(
            lambda rows: statistics.fmean(fn(rows) for fn in fns.values()),
            idx,
            n_bootstrap=n_bootstrap,
            seed=seed,
            groups=groups,
        )
        key = "test_mean_auc_" + "_".join(classes)
        out[key] = ci.value
        out[f"{key}_ci95"] = [ci.ci_low, ci.ci_high]
    return out


def _best_epoch_from_one(metrics: dict) -> int:
    """The selected epoch counted from 1.

    skinml-train counts epochs from 1 since ``metrics.json`` gained ``epochs_run``; runs
    written before that stored the 0-based index, so their figure gets 1 added.
    """
    best = int(metrics["best_epoch"])
    return best if "epochs_run" in metrics else best + 1


def summarise(run_dir: Path, *, one_vs_rest: list[str], time_file: Path | None) -> dict:
    import torch
    import yaml

    needed = ("metrics.json", "resolved_config.yaml", "checkpoints/last.pt")
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise SystemExit(
            f"{run_dir}: missing {missing}; expected a finished skinml-train run directory "
            "(outputs/<task>/<timestamp>). Rerun or resume the run (resume=auto) first."
        )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
    history = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["history"]
    out: dict = {
        "run_dir": str(run_dir),
        "dataset": cfg["data"]["name"],
        "split_strategy": cfg["data"]["split"]["strategy"],
        "model": cfg["model"]["name"],
        "image_size": cfg["data"]["image_size"],
        "seed": cfg["seed"],
        "epochs_run": len(history),
        "best_epoch": _best_epoch_from_one(metrics),
        "tta": cfg["trainer"]["tta"],
        "test_n": int(metrics["test_n"]),
    }
    for split in ("test", "val"):
        for name, short in HEADLINE.items():
            key = f"{split}_{name}"
            if key in metrics:
                out[f"{split}_{short}"] = metrics[key]
                if f"{key}_ci_low" in metrics:
                    out[f"{split}_{short}_ci95"] = [
                        metrics[f"{key}_ci_low"],
                        metrics[f"{key}_ci_high"],
                    ]
    out["temperature"] = metrics.get("temperature")
    out["train_images_per_s_median"] = statistics.median(h["train_images_per_s"] for h in history)
    out["training_time_s"] = sum(h["epoch_time_s"] for h in history)  # incl. per-epoch validation
    if time_file is not None:
        out.update(time_file_figures(time_file))
    if one_vs_rest:
        n_boot = int(cfg["evaluation"]["n_bootstrap"])
        out.update(
            one_vs_rest_aucs(run_dir / "predictions_test.csv", one_vs_rest, n_boot, cfg["seed"])
        )
    return out


def emit(results: dict, out: Path | None) -> None:
    """Print ``results`` as JSON and write it to ``out`` when given."""
    text = json.dumps(results, indent=2) + "\n"
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="an outputs/<task>/<timestamp> directory")
    parser.add_argument("--one-vs-rest", nargs="*", default=[], metavar="CLASS")
    parser.add_argument("--time-file", type=Path, help="GNU /usr/bin/time -v output of the run")
    parser.add_argument("-o", "--out", type=Path, help="results.json to write (default: print)")
    args = parser.parse_args()
    from skinml.tracking.provenance import command_provenance
    from skinml.training.bundle import run_provenance

    results = summarise(args.run_dir, one_vs_rest=args.one_vs_rest, time_file=args.time_file)
    results["provenance"] = {
        "training_run": run_provenance(args.run_dir),
        "summary": command_provenance(),
    }
    emit(results, args.out)


if __name__ == "__main__":
    main()
