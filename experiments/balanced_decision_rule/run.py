"""Does a prior-corrected decision rule buy balanced accuracy, and what does it cost?

skinml predicts the class with the highest calibrated probability. Balanced accuracy (the
mean of per-class sensitivities, HAM10000's headline figure) is maximised instead by the
class with the highest ``p(c | x) / prior(c)`` (the Bayes rule for equal class priors).
A run trained with loss weights ``prior(c) ** -q`` already leans that way by ``q``, so
the rule ``argmax p(c | x) * prior(c) ** -a`` has a theory value ``a = 1 - q``. This script
measures, for finished ``skinml-train`` runs:

- the rule's exponent chosen on **validation** (grid, ties to the smaller exponent) and the
  theory value, each applied once to the **test** split (never used for a choice);
- test balanced accuracy, accuracy and per-class sensitivity for argmax, theory and
  validation-chosen exponents, with lesion-grouped bootstrap intervals, and the paired
  bootstrap interval of each difference against argmax;
- a plot of validation and test balanced accuracy and accuracy over the exponent.

Validation probabilities come from the run's own ``model.onnx`` through skinml's torch-free
predictor (its default reproduces the run's calibrated probabilities, TTA included); test
probabilities are the run's ``predictions_test.csv``. Priors are the training split's.

Usage::

    .venv/bin/python experiments/balanced_decision_rule/run.py \\
        outputs/ham10000_lesion_lite0_192/seed0 outputs/ham10000_lesion_lite0_bal/seed0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import balanced_accuracy_score

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GRID = np.round(np.arange(0.0, 1.501, 0.05), 2)


def prior_corrected(probs: np.ndarray, prior: np.ndarray, a: float) -> np.ndarray:
    """Class indices of ``argmax p * prior ** -a`` (a = 0: plain argmax)."""
    return np.argmax(np.log(np.clip(probs, 1e-12, None)) - a * np.log(prior), axis=1)


def balance_power(run: Path) -> float:
    """The ``q`` of the run's loss weights ``prior ** -q`` (0 without loss weights)."""
    cfg = yaml.safe_load((run / "resolved_config.yaml").read_text(encoding="utf-8"))
    data = cfg["data"]
    if data.get("class_balance") != "loss_weights":
        return 0.0
    return float(data.get("balance_power", 1.0))


def validation_probs(run: Path, frame: pd.DataFrame, classes: list[str]) -> np.ndarray:
    from skinml.predict.predictor import ImagePredictor

    predictor = ImagePredictor(run / "model.onnx")
    rows = predictor.predict_paths([run / p for p in frame["image"]], batch_size=32)
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"{run}: {len(bad)} validation images failed, e.g. {bad[0]}")
    return np.array([[r[f"p_{c}"] for c in classes] for r in rows], dtype=float)


def interval(metric, *arrays, groups, n_bootstrap: int) -> dict[str, float]:
    from skinml.stats.bootstrap import bootstrap_ci

    ci = bootstrap_ci(metric, *arrays, groups=groups, n_bootstrap=n_bootstrap, seed=0)
    return {"value": ci.value, "ci95": [ci.ci_low, ci.ci_high]}


def measure(run: Path, n_bootstrap: int) -> dict:
    manifest = pd.read_csv(run / "split_manifest.csv")
    test = pd.read_csv(run / "predictions_test.csv")
    classes = [c[2:] for c in test.columns if c.startswith("p_")]
    index = {c: k for k, c in enumerate(classes)}
    prior = manifest.loc[manifest["split"] == "train", "label"].value_counts(normalize=True)
    prior = prior.reindex(classes).to_numpy()
    val = manifest[manifest["split"] == "val"].reset_index(drop=True)
    p_val = validation_probs(run, val, classes)
    y_val = val["label"].map(index).to_numpy()
    p_test = test[[f"p_{c}" for c in classes]].to_numpy()
    y_test = test["label"].map(index).to_numpy()
    lesions = test["lesion_id"].to_numpy()

    def curve(p, y):
        return [
            {
                "a": float(a),
                "balanced_acc": balanced_accuracy_score(y, prior_corrected(p, prior, a)),
                "acc": float(np.mean(prior_corrected(p, prior, a) == y)),
            }
            for a in GRID
        ]

    val_curve, test_curve = curve(p_val, y_val), curve(p_test, y_test)
    q = balance_power(run)
    a_val = float(GRID[int(np.argmax([r["balanced_acc"] for r in val_curve]))])
    rules = {"argmax": 0.0, "theory": round(1.0 - q, 2), "validation_chosen": a_val}
    out: dict = {"run_dir": str(run), "balance_power": q, "classes": classes,
                 "train_prior": dict(zip(classes, prior.round(4).tolist(), strict=True)),
                 "n_val": len(y_val), "n_test": len(y_test), "rules": {}}  # fmt: skip
    base = prior_corrected(p_test, prior, 0.0)

    def ci(metric, *arrays):
        return interval(metric, *arrays, groups=lesions, n_bootstrap=n_bootstrap)

    def accuracy(y, p):
        return float(np.mean(y == p))

    for name, a in rules.items():
        pred = prior_corrected(p_test, prior, a)
        rule = {
            "a": a,
            "val_balanced_acc": balanced_accuracy_score(y_val, prior_corrected(p_val, prior, a)),
            "test_balanced_acc": ci(balanced_accuracy_score, y_test, pred),
            "test_acc": ci(accuracy, y_test, pred),
            "test_sensitivity": {
                c: float(np.mean(pred[y_test == k] == k)) for c, k in index.items()
            },
        }
        if a != 0.0:
            rule["test_balanced_acc_minus_argmax"] = ci(
                lambda y, p, b: balanced_accuracy_score(y, p) - balanced_accuracy_score(y, b),
                y_test, pred, base,
            )  # fmt: skip
            rule["test_acc_minus_argmax"] = ci(
                lambda y, p, b: accuracy(y, p) - accuracy(y, b), y_test, pred, base
            )
        out["rules"][name] = rule
    out["val_curve"], out["test_curve"] = val_curve, test_curve
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        for split, style in (("val", "--"), ("test", "-")):
            curve = pd.DataFrame(res[f"{split}_curve"])
            ax.plot(curve["a"], curve["balanced_acc"], style, color="C0",
                    label=f"{split} balanced accuracy")  # fmt: skip
            ax.plot(curve["a"], curve["acc"], style, color="C1", label=f"{split} accuracy")
        for name, color in (("theory", "C2"), ("validation_chosen", "C3")):
            ax.axvline(res["rules"][name]["a"], color=color, lw=1, label=f"{name} exponent")
        name = Path(res["run_dir"]).parent.name
        ax.set(
            title=f"{name} (loss weights q = {res['balance_power']:g})",
            xlabel="exponent a in argmax p · prior^-a",
            ylim=(0.4, 0.9),
        )
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished skinml-train run folders")
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    results = [measure(run, args.n_bootstrap) for run in args.runs]
    plot(results, args.out.with_name("balanced_decision_rule.png"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    doc = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "commit": commit,
           "runs": results}  # fmt: skip
    doc["headline"] = {
        f"{Path(res['run_dir']).parent.name}_{name}_{key}": rule[key]["value"]
        for res in results
        for name, rule in res["rules"].items()
        for key in ("test_balanced_acc", "test_acc", "test_balanced_acc_minus_argmax")
        if key in rule
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    for res in results:
        print(res["run_dir"], "q =", res["balance_power"])
        for name, rule in res["rules"].items():
            bal = rule["test_balanced_acc"]
            print(
                f"  {name:18s} a={rule['a']:.2f} val bal {rule['val_balanced_acc']:.3f}  "
                f"test bal {bal['value']:.3f} {np.round(bal['ci95'], 3)}  "
                f"acc {rule['test_acc']['value']:.3f}"
            )


if __name__ == "__main__":
    main()
