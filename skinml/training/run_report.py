"""``index.html``: one page per training run that a person reads before anything else.

Why: a run folder holds a dozen CSV, JSON and PNG files; researchers and the
clinicians they show a model to want the headline metrics with their intervals,
the warnings, the training curves, the plots and the subgroup tables on one page,
with links to the model file and its card. The page is built only from the files
in the run folder (so it can be rebuilt for any past run with
``python -m skinml.training.run_report RUN_DIR``) and embeds its plots, so the
single file can be mailed or attached to MLflow.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from skinml.reporting.html import HtmlReport
from skinml.stats import BIAS_CORRECTED, PERCENTILE

REPORT_FILE = "index.html"

#: plots/ files in reading order, with what a reader should take from each.
_PLOTS = (
    ("roc_test.png", "ROC curves on the test split (one-vs-rest per class)."),
    (
        "confusion_matrix_test.png",
        "Confusion matrix on the test split: rows are the true class, columns the arg-max "
        "predicted class (the malignancy figures use the validation-chosen threshold instead).",
    ),
    (
        "reliability_test.png",
        "Reliability diagram: predicted probability against observed frequency, before and "
        "after temperature scaling.",
    ),
    ("subgroups_test.png", "Subgroup metrics on the test split with 95% intervals."),
    ("gradcam_test.png", "Grad-CAM heatmaps on test images (see the note on resolution)."),
)

#: files worth a link, with what they hold; only those present are listed.
_LINKS = (
    ("model.onnx", "the model file for skinml-predict (ONNX, everything embedded)"),
    ("model.card.html", "model card (for clinicians)"),
    ("model.card.md", "model card (Markdown)"),
    ("model.int8.onnx", "int8 model file"),
    ("model.int8.card.html", "int8 model card"),
    ("predictions_test.csv", "test-split predictions, one row per image"),
    ("metrics_with_ci.csv", "every metric with its interval, split, n and seed"),
    ("per_class_test.csv", "per-class test metrics"),
    ("subgroups_test.csv", "subgroup test metrics"),
    ("history.csv", "per-epoch training history"),
    ("dataset_card.md", "dataset card: sources, counts per split and class"),
    ("split_manifest.csv", "the split: every image and the split it went to"),
    ("resolved_config.yaml", "the resolved configuration (rerun with it)"),
    ("train.log", "training log"),
)

_METRIC_NAMES = {
    "accuracy": "accuracy (arg-max)",
    "balanced_accuracy": "balanced accuracy (arg-max)",
    "macro_auc": "macro AUC (one-vs-rest)",
    "malignant_auc": "malignant-vs-benign AUC",
    "malignant_sensitivity": "malignant sensitivity (at the threshold)",
    "malignant_specificity": "malignant specificity (at the threshold)",
    "ece": "ECE (after calibration)",
    "ece_before_calibration": "ECE before calibration",
}


_INTERVALS = {
    "wilson": "Wilson",
    "wilson+cluster_bootstrap": "Wilson ∪ cluster bootstrap",
    PERCENTILE: "bootstrap",
    BIAS_CORRECTED: "bias-corrected bootstrap",
}


def _num(v: Any, digits: int = 3) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else f"{f:.{digits}f}"


def _with_ci(value: Any, low: Any, high: Any) -> str:
    """``0.652 (0.449–0.812)``, or the value alone when there is no interval."""
    ci = f" ({_num(low)}–{_num(high)})" if _num(low) and _num(high) else ""
    return f"{_num(value)}{ci}"


def _count(successes: Any, denominator: Any) -> str:
    if _num(successes) == "" or _num(denominator) in ("", "0.000"):
        return ""
    return f"{int(float(successes))}/{int(float(denominator))}"


def metric_table(metrics: pd.DataFrame, split: str) -> pd.DataFrame:
    """One split's rows of ``metrics_with_ci.csv`` as a table people read."""
    rows = metrics[metrics["split"] == split]
    return pd.DataFrame(
        {
            "metric": [_METRIC_NAMES.get(m, m.replace("_", " ")) for m in rows["metric"]],
            "value (95% CI)": [
                _with_ci(v, lo, hi)
                for v, lo, hi in zip(rows["value"], rows["ci_low"], rows["ci_high"], strict=True)
            ],
            "count": [
                _count(s, d) for s, d in zip(rows["successes"], rows["denominator"], strict=True)
            ],
            "interval": [_INTERVALS.get(str(i), str(i)) for i in rows["interval"].fillna("")],
            "n": [int(d) if _num(d) else "" for d in rows["denominator"]],
        }
    )


def per_class_table(per_class: pd.DataFrame) -> pd.DataFrame:
    """``per_class_test.csv`` folded to eight columns (intervals beside their values)."""
    return pd.DataFrame(
        {
            "class": per_class["class"].astype(str),
            "malignant": ["yes" if str(m) == "True" else "no" for m in per_class["malignant"]],
            "n": per_class["n"].astype(int).tolist(),
            "predicted": per_class["n_predicted"].astype(int).tolist(),
            "sensitivity (95% CI)": [
                _with_ci(r.sensitivity, r.sensitivity_ci_low, r.sensitivity_ci_high)
                for r in per_class.itertuples()
            ],
            "specificity (95% CI)": [
                _with_ci(r.specificity, r.specificity_ci_low, r.specificity_ci_high)
                for r in per_class.itertuples()
            ],
            "F1": [_num(v) for v in per_class["f1"]],
            "AUC": [_num(v) for v in per_class["auc"]],
        }
    )


def subgroup_table(subgroups: pd.DataFrame) -> pd.DataFrame:
    """``subgroups_test.csv`` folded so it fits a laptop screen."""
    out = pd.DataFrame(
        {
            "subgroup": [
                "all cases" if c == "all" else f"{c} = {lv}"
                for c, lv in zip(subgroups["column"], subgroups["level"], strict=True)
            ],
            "n": subgroups["n"].astype(int).tolist(),
            "malignant": subgroups["n_malignant"].astype(int).tolist(),
            "balanced accuracy (95% CI)": [
                _with_ci(
                    r.balanced_accuracy, r.balanced_accuracy_ci_low, r.balanced_accuracy_ci_high
                )
                for r in subgroups.itertuples()
            ],
            "malignant sensitivity (95% CI)": [
                " ".join(
                    filter(
                        None,
                        (
                            _count(r.malignant_sensitivity_successes, r.n_malignant),
                            _with_ci(
                                r.malignant_sensitivity,
                                r.malignant_sensitivity_ci_low,
                                r.malignant_sensitivity_ci_high,
                            ),
                        ),
                    )
                )
                for r in subgroups.itertuples()
            ],
        }
    )
    if "note" in subgroups:
        out["note"] = subgroups["note"].fillna("").astype(str).tolist()
    return out


def plot_training_curves(history: pd.DataFrame, best_epoch: int | None = None) -> Any:
    """Loss and validation metrics per epoch (epochs counted from 1), best epoch marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    epochs = history["epoch"]
    for col, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        if col in history:
            ax_loss.plot(epochs, history[col], marker="o", ms=3, label=label)
    metric_cols = [c for c in history.columns if c.startswith("val_") and c != "val_loss"]
    for col in metric_cols:
        ax_metric.plot(epochs, history[col], marker="o", ms=3, label=col[4:].replace("_", " "))
    for ax, title in ((ax_loss, "loss"), (ax_metric, "validation metrics")):
        if best_epoch is not None:
            ax.axvline(
                best_epoch, color="grey", ls="--", lw=1, label=f"selected epoch {best_epoch}"
            )
        ax.set_xlabel("epoch (from 1)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def _subtitle(run_dir: Path) -> str:
    cfg_path = run_dir / "resolved_config.yaml"
    if not cfg_path.is_file():
        return str(run_dir)
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(cfg_path)
    pick = OmegaConf.select
    parts = [
        f"dataset {pick(cfg, 'data.name', default='?')}",
        f"{pick(cfg, 'data.split.strategy', default='?')} split",
        f"model {pick(cfg, 'model.name', default='?')}",
        f"{pick(cfg, 'data.image_size', default='?')} px",
        f"seed {pick(cfg, 'seed', default='?')}",
    ]
    return " · ".join(parts) + f" · folder {run_dir.name}"


def write_run_report(
    run_dir: str | Path, *, notes: Sequence[str] = (), title: str | None = None
) -> Path:
    """Write ``RUN_DIR/index.html`` from the run folder's files and return its path.

    ``notes`` are extra lines for the summary box (e.g. why Grad-CAM was not drawn).
    Missing files are skipped with a line saying so, never an error: a report of a
    run that stopped before the test evaluation still shows its curves.
    """
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    report = HtmlReport(title or f"Training run {run_dir.name}", _subtitle(run_dir))

    warnings = list(summary.get("warnings") or [])
    epochs = (
        f"selected epoch {summary.get('best_epoch')} of {summary.get('epochs_run')} run "
        f"(counted from 1){', stopped early' if summary.get('stopped_early') else ''}"
    )
    if warnings:
        report.verdict([f"Warning: {w}." for w in warnings] + [epochs, *notes], tone="bad")
    else:
        lines = [
            f"test balanced accuracy {_with_ci(*_triple(summary, 'test_balanced_accuracy'))}",
            f"test macro AUC {_with_ci(*_triple(summary, 'test_macro_auc'))}",
        ]
        report.verdict([*lines, epochs, *notes], tone="good")

    metrics = _read_csv(run_dir / "metrics_with_ci.csv")
    report.heading("Headline metrics")
    if metrics is None:
        report.paragraph("metrics_with_ci.csv is missing: the run did not reach evaluation.")
    else:
        report.paragraph(
            "Test split: proportions as counts with Wilson intervals; AUC and balanced "
            "accuracy with percentile-bootstrap intervals; ECE, which small samples "
            "overestimate, bias-corrected with its basic bootstrap interval. Accuracy uses "
            "the arg-max class; malignant sensitivity and specificity use the threshold "
            "chosen on validation.",
            css_class="small",
        )
        report.table(metric_table(metrics, "test"))
        report.heading("Validation (used to select the epoch, calibrate and set the threshold)", 3)
        report.table(metric_table(metrics, "val"))

    history = _read_csv(run_dir / "history.csv")
    if history is not None and len(history):
        report.heading("Training curves")
        report.figure(
            plot_training_curves(history, summary.get("best_epoch")),
            caption="The model file holds the weights of the selected epoch (dashed line).",
        )

    per_class = _read_csv(run_dir / "per_class_test.csv")
    if per_class is not None:
        report.heading("Per class (test)")
        report.table(per_class_table(per_class))
    confusion = _read_csv(run_dir / "confusion_matrix_test.csv")
    if confusion is not None:
        report.heading("Confusion matrix (test, arg-max)", 3)
        report.table(confusion)

    subgroups = _read_csv(run_dir / "subgroups_test.csv")
    if subgroups is not None:
        report.heading("Subgroups (test)")
        report.table(subgroup_table(subgroups))

    plots = [(run_dir / "plots" / name, cap) for name, cap in _PLOTS]
    plots = [(p, cap) for p, cap in plots if p.is_file()]
    if plots:
        report.heading("Plots")
        for path, caption in plots:
            report.png_file(path, caption=caption)

    present = [(name, what) for name, what in _LINKS if (run_dir / name).is_file()]
    report.heading("Files of this run")
    report.links([(name, f"{name}: {what}") for name, what in present])
    return report.write(run_dir / REPORT_FILE)


def _triple(summary: dict, key: str) -> tuple[Any, Any, Any]:
    return summary.get(key), summary.get(f"{key}_ci_low"), summary.get(f"{key}_ci_high")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rebuild a training run's index.html from the files in its folder.",
        epilog="example: python -m skinml.training.run_report outputs/skinml-train/RUN",
    )
    parser.add_argument("run_dir", type=Path, help="a skinml-train run folder (has metrics.json)")
    args = parser.parse_args(argv)
    if not (args.run_dir / "metrics.json").is_file():
        print(
            f"error: {args.run_dir} has no metrics.json; give a folder written by skinml-train",
            file=sys.stderr,
        )
        return 2
    print(f"report written to {write_run_report(args.run_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
