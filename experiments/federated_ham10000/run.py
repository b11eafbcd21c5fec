"""HAM10000's four acquisition sites as hospitals: pooled vs local-only vs FedAvg, FedProx
and FedAdam, with per-site and pooled balanced accuracy and AUC (95% bootstrap CIs).

Every arm uses the same per-site lesion-grouped split (written by the first federated run
as ``split_manifest.csv``), the same network, optimiser, augmentation and image size, and
the same number of passes over the data (``--epochs`` pooled / local-only epochs =
``--rounds`` x 1 local epoch). Usage::

    .venv/bin/python experiments/federated_ham10000/run.py --image-size 32 --rounds 12
    .venv/bin/python experiments/federated_ham10000/run.py --model efficientnet_lite0 \
        --image-size 64 --rounds 10 --work outputs/federated_ham10000_lite0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
MALIGNANT = ["akiec", "bcc", "mel"]
STRATEGIES = {"fedavg": "FedAvg", "fedprox": "FedProx", "fedadam": "FedAdam"}


def compose(name: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        return hydra_compose(config_name=name, overrides=overrides)


#: Network and optimiser per ``--model``: from scratch, or the ImageNet-pretrained
#: EfficientNet-Lite0 with skinml's fine-tuning recipe (backbone at 0.3x the head's rate,
#: no weight decay on norms and biases, gradient clipping). No EMA and no scheduler in
#: either: a round restarts the optimiser, so per-round schedules would not mean the same.
RECIPES = {
    "small_cnn": ["model=small_cnn", "optim=adamw", "augmentation=dermoscopy"],
    "efficientnet_lite0": [
        "model=efficientnet_lite0",
        "optim=adamw_finetune",
        "augmentation=dermoscopy_finetune",
        "trainer.backbone_lr_scale=0.3",
        "trainer.no_weight_decay_1d=true",
        "trainer.grad_clip_norm=5.0",
    ],
}

MODEL_DESCRIPTIONS = {
    "small_cnn": "resnet10t (configs/model/small_cnn.yaml), random init",
    "efficientnet_lite0": "tf_efficientnet_lite0, ImageNet weights (installed offline), "
    "fine-tuned: backbone lr 0.3x, grad clip 5",
}


def common(args, work: Path) -> list[str]:
    return [
        f"data.image_size={args.image_size}",
        "scheduler=none",
        "trainer=default",
        *RECIPES[args.model],
        "trainer.progress=false",
        f"trainer.batch_size={args.batch_size}",
        f"seed={args.seed}",
        "evaluation.gradcam_images=0",
        f"evaluation.n_bootstrap={args.n_bootstrap}",
        f"tracking.tracking_uri=sqlite:///{work}/mlflow.db",
    ]


def federated_arm(args, work: Path, name: str) -> dict:
    from skinml.federated.launch import run

    data_root = args.data / "ham10000_images_200x150"
    cfg = compose(
        "federate",
        [
            "data=ham10000",
            f"data.source.root={data_root}",
            f"federation={name}",
            f"federation.rounds={args.rounds}",
            "federation.local_epochs=1",
            "federation.checks.missing_classes=warn",  # two sites have no akiec: said, not fatal
            "federation.strategy.min_available_nodes=4",
            "federation.strategy.min_train_nodes=4",
            "federation.strategy.min_evaluate_nodes=4",
            f"output_root={work}",
            *common(args, work),
            *([f"federation.strategy.eta={args.fedadam_eta}"] if name == "fedadam" else []),
        ],
    )
    cfg.trainer.threads = 1
    return run(cfg, work / f"federated_{name}")


def train_arm(args, work: Path, manifest: Path, name: str, classes, malignant) -> Path:
    from skinml.training.pipeline import run

    cfg = compose(
        "train",
        [
            "data=manifest",
            f"data.source.path={manifest}",
            f"data.classes=[{','.join(classes)}]",
            f"data.malignant=[{','.join(malignant)}]",
            "data.split.strategy=predefined",
            f"trainer.max_epochs={args.epochs}",
            f"trainer.early_stopping_patience={args.epochs}",
            "trainer.threads=2",
            "export.enabled=false",
            "tracking.log_model=false",
            f"output_root={work}",
            *common(args, work),
        ],
    )
    run_dir = work / name
    run_dir.mkdir(parents=True, exist_ok=True)
    run(cfg, run_dir)
    return run_dir


def site_metrics(run_dir: Path, split_manifest: pd.DataFrame, args) -> dict[str, dict]:
    """Per-site test balanced accuracy and macro AUC of a skinml-train run, with CIs."""
    from skinml.evaluation import evaluate

    preds = pd.read_csv(run_dir / "predictions_test.csv")
    classes = [c.removeprefix("p_") for c in preds.columns if c.startswith("p_")]
    out = {}
    for site, rows in preds.groupby("site"):
        y = np.array([classes.index(c) for c in rows["label"]])
        p = rows[[f"p_{c}" for c in classes]].to_numpy()
        ev = evaluate(
            y,
            p,
            classes,
            [c for c in MALIGNANT if c in classes],
            groups=rows["lesion_id"].to_numpy(),
            group_unit="lesions",
            n_bootstrap=args.n_bootstrap,
            seed=args.seed,
        )
        out[str(site)] = headline(ev.flat_metrics("test_"), n=ev.n)
    return out


def headline(flat: dict, n: int | None = None) -> dict:
    keys = ("balanced_accuracy", "macro_auc")
    out = {"n": int(n if n is not None else flat.get("test_n", 0))}
    for k in keys:
        for suffix in ("", "_ci_low", "_ci_high"):
            v = flat.get(f"test_{k}{suffix}")
            out[f"{k}{suffix}"] = None if v is None else round(float(v), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "federated_ham10000")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--model", choices=sorted(RECIPES), default="small_cnn")
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="results file")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="fedavg,fedprox,fedadam,pooled,local")
    parser.add_argument("--fedadam-eta", type=float, default=0.003, help="FedAdam server rate")
    args = parser.parse_args()
    args.epochs = args.rounds  # the same passes over every image in every arm
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    arms = args.arms.split(",")
    results: dict = {"federated": {}, "local_only": {}, "seconds": {}}
    partial = work / "results_partial.json"
    if partial.is_file():
        results = json.loads(partial.read_text())

    def save():
        partial.write_text(json.dumps(results, indent=2))

    for name in [a for a in arms if a in STRATEGIES]:
        if name in results["federated"]:
            continue
        t0 = time.perf_counter()
        outcome = federated_arm(args, work, name)
        if name == "fedadam":
            results.setdefault("fedadam_eta", args.fedadam_eta)
        results["seconds"][name] = round(time.perf_counter() - t0, 1)
        results["federated"][name] = {
            "strategy": STRATEGIES[name],
            "pooled": headline(outcome["metrics"]),
            "sites": {s: headline(f) for s, f in outcome["per_site_test"].items()},
            "rounds_to_converge": outcome["rounds_to_converge"],
            "bytes_per_round": outcome["bytes_per_round"][-1],
            "val_loss_by_round": [h["evaluate"].get("val_loss") for h in outcome["rounds"]],
            "val_balanced_accuracy_by_round": [
                h["evaluate"].get("val_balanced_accuracy") for h in outcome["rounds"]
            ],
            "failed": outcome["failed"],
            "site_warnings": outcome["site_warnings"],
            "onnx": outcome["onnx"],
        }
        save()
    split_manifest = next(work.glob("federated_*/split_manifest.csv"))
    frame = pd.read_csv(split_manifest)
    if "pooled" in arms and "pooled" not in results:
        t0 = time.perf_counter()
        run_dir = train_arm(args, work, split_manifest, "pooled", CLASSES, MALIGNANT)
        flat = json.loads((run_dir / "metrics.json").read_text())
        results["pooled"] = {
            "pooled": headline(flat),
            "sites": site_metrics(run_dir, frame, args),
        }
        results["seconds"]["pooled"] = round(time.perf_counter() - t0, 1)
        save()
    if "local" in arms:
        for site, rows in frame.groupby("site"):
            if site in results["local_only"]:
                continue
            t0 = time.perf_counter()
            present = [c for c in CLASSES if (rows["label"] == c).any()]
            path = split_manifest.parent / f"site_{site}.csv"
            rows.to_csv(path, index=False)
            run_dir = train_arm(
                args, work, path, f"local_{site}", present, [m for m in MALIGNANT if m in present]
            )
            flat = json.loads((run_dir / "metrics.json").read_text())
            results["local_only"][site] = {**headline(flat), "classes": present}
            results["seconds"][f"local_{site}"] = round(time.perf_counter() - t0, 1)
            save()
    summarise(results, args)


def summarise(results: dict, args) -> None:
    from skinml.tracking.provenance import git_commit, package_versions

    pooled = results["pooled"]["pooled"]["balanced_accuracy"]
    best_name = max(
        results["federated"], key=lambda k: results["federated"][k]["pooled"]["balanced_accuracy"]
    )
    best = results["federated"][best_name]["pooled"]["balanced_accuracy"]
    local = results["local_only"]
    beats = {
        name: {
            site: arm["sites"][site]["balanced_accuracy"] > local[site]["balanced_accuracy"]
            for site in local
        }
        for name, arm in results["federated"].items()
    }
    doc = {
        "pooled_balanced_acc": pooled,
        "best_federated_balanced_acc": best,
        "best_federated_strategy": results["federated"][best_name]["strategy"],
        "federated_minus_pooled_balanced_acc": round(best - pooled, 4),
        "goal_within_0_03_of_pooled": bool(best - pooled >= -0.03),
        "every_site_beats_local_only": {k: all(v.values()) for k, v in beats.items()},
        "site_beats_local_only": beats,
        **results,
        "settings": {
            "image_size": args.image_size,
            "rounds": args.rounds,
            "local_epochs": 1,
            "pooled_and_local_epochs": args.epochs,
            "model": MODEL_DESCRIPTIONS[args.model],
            "batch_size": args.batch_size,
            "seed": args.seed,
            "n_bootstrap": args.n_bootstrap,
            "split": "per site, lesion-grouped, stratified, 70/10/20 (data=ham10000 split)",
        },
        "provenance": {"git_commit": git_commit(), "packages": package_versions()},
    }
    args.out.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    print(json.dumps({k: doc[k] for k in list(doc)[:6]}, indent=2))


if __name__ == "__main__":
    main()
