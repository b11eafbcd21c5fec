"""External validation without retraining: a HAM10000 model scored on other sources.

Takes a finished ``skinml-train`` run on HAM10000 (7 classes) and scores, with exactly the
run's evaluation path (its preprocessing, flip-TTA setting, temperature and validation-
chosen malignancy threshold), two sources it never saw:

* the ISIC 2017 Part 3 official test set (600: melanoma, nevus, seborrheic keratosis),
* the 113 CC0 ISIC Archive UDA-1 images (melanoma vs nevus, full resolution).

HAM10000's ``mel`` and ``nv`` are the same diagnoses; seborrheic keratosis is one of the
diagnoses that HAM10000 pools as ``bkl``. Reported per source, with 95% bootstrap CIs
(1,000 resamples, seed 0) and Wilson intervals for proportions:

* melanoma AUC (``p_mel`` one-vs-rest), SK AUC (``p_bkl``) and their mean (ISIC 2017),
* malignancy AUC of ``p_akiec + p_bcc + p_mel`` for melanoma vs the rest,
* calibration: the ECE of that malignant probability against "is melanoma" (15 bins),
* the validation-chosen malignancy operating point: sensitivity and specificity on the new
  source against what it gave on HAM10000's own test split.

Usage::

    .venv/bin/python experiments/external_validation/run.py outputs/ham10000_lesion_lite0/seed0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from skinml.vocabulary import LabelSpace, map_labels

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("SKINML_SHARED_DATA", REPO.parent / "shared" / "data"))


def predict(bundle, manifest, tta: bool, threads: int) -> np.ndarray:
    """Calibrated probabilities for every image of ``manifest``, as the run evaluated."""
    from scipy.special import softmax

    from skinml.data.torch_dataset import ManifestImageDataset, load_resized_images
    from skinml.training.trainer import Trainer

    prep = bundle.metadata.preprocessing
    images = load_resized_images(manifest, prep, threads=threads, progress=False)
    ds = ManifestImageDataset(images, np.zeros(len(images), dtype=np.int64), prep)
    trainer = Trainer(device="cpu", tta=tta, progress=False, threads=threads, eval_batch_size=64)
    logits, _ = trainer.predict_logits(bundle.build_model(), ds)
    return softmax(logits / bundle.metadata.calibration.temperature, axis=1)


def binary_ece(hit: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """ECE of a probability of one event (reliability of ``p`` against ``hit``)."""
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    gap = np.abs(np.bincount(idx, hit, n_bins) - np.bincount(idx, p, n_bins))
    return float(gap.sum() / len(p))


def score_source(name: str, labels: np.ndarray, probs: np.ndarray, meta) -> dict:
    from sklearn.metrics import roc_auc_score

    from skinml.stats.bootstrap import bootstrap_ci, wilson_ci

    classes = list(meta.classes)
    col = {c: probs[:, classes.index(c)] for c in classes}
    p_mal = sum(col[c] for c in meta.malignant)
    is_mel = (labels == "mel").astype(int)

    def auc(y, p):
        return roc_auc_score(y, p)

    def ci(metric, *arrays):
        b = bootstrap_ci(metric, *arrays, n_bootstrap=1000, seed=0)
        return round(b.value, 4), [round(b.ci_low, 4), round(b.ci_high, 4)]

    out: dict = {"source": name, "n": len(labels)}
    out["counts"] = {
        str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)
    }
    out["test_auc_melanoma"], out["test_auc_melanoma_ci95"] = ci(auc, is_mel, col["mel"])
    if (labels == "bkl").any():
        is_sk = (labels == "bkl").astype(int)
        out["test_auc_seborrheic_keratosis"], out["test_auc_seborrheic_keratosis_ci95"] = ci(
            auc, is_sk, col["bkl"]
        )
        mean = lambda m, s, pm, ps: (auc(m, pm) + auc(s, ps)) / 2  # noqa: E731
        (
            out["test_mean_auc_melanoma_seborrheic_keratosis"],
            out["test_mean_auc_melanoma_seborrheic_keratosis_ci95"],
        ) = ci(mean, is_mel, is_sk, col["mel"], col["bkl"])
    out["test_malignant_auc"], out["test_malignant_auc_ci95"] = ci(auc, is_mel, p_mal)
    out["test_ece_malignant_probability"], out["test_ece_malignant_probability_ci95"] = ci(
        binary_ece, is_mel.astype(float), p_mal
    )
    thr = meta.threshold("malignant")
    flag = p_mal >= thr.threshold
    tp, pos = int((flag & (is_mel == 1)).sum()), int(is_mel.sum())
    tn, neg = int((~flag & (is_mel == 0)).sum()), int((is_mel == 0).sum())
    out["malignant_threshold"] = thr.threshold
    out["test_malignant_sensitivity"] = round(tp / pos, 4)
    out["test_malignant_sensitivity_ci95_wilson"] = [round(x, 4) for x in wilson_ci(tp, pos)]
    out["test_malignant_sensitivity_counts"] = f"{tp}/{pos}"
    out["test_malignant_specificity"] = round(tn / neg, 4)
    out["test_malignant_specificity_ci95_wilson"] = [round(x, 4) for x in wilson_ci(tn, neg)]
    out["test_malignant_specificity_counts"] = f"{tn}/{neg}"
    pred = np.array(classes)[probs.argmax(1)]
    out["argmax_distribution"] = {
        str(k): int(v) for k, v in zip(*np.unique(pred, return_counts=True), strict=True)
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a skinml-train run on HAM10000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

    import torch

    from skinml.data.registry import get_dataset
    from skinml.training.bundle import ModelBundle

    torch.set_num_threads(args.threads)
    bundle = ModelBundle.load(args.run_dir)
    meta = bundle.metadata
    train_cfg = meta.provenance.training_config
    tta = bool(train_cfg.get("trainer", {}).get("tta", False))
    in_dist = json.loads((args.run_dir / "metrics.json").read_text())
    t0 = time.perf_counter()
    sources = {
        "isic2017_test": get_dataset("isic2017", root=SHARED / "isic2017_256").split("test"),
        "isic_uda1_full_resolution": get_dataset("isic_uda1", root=SHARED / "isic_archive_uda1"),
    }
    results = {
        "run_dir": str(args.run_dir),
        "model": bundle.architecture,
        "image_size": list(meta.preprocessing.input_size),
        "trained_on": meta.provenance.dataset,
        "tta": tta,
        "temperature": meta.calibration.temperature,
        "threshold_rule": meta.threshold("malignant").rule,
        "in_distribution_test": {
            k: in_dist.get(k)
            for k in (
                "test_malignant_sensitivity",
                "test_malignant_specificity",
                "test_malignant_auc",
                "test_ece",
                "test_macro_auc",
                "test_balanced_accuracy",
            )
        },
        "sources": {},
    }
    for name, manifest in sources.items():
        # ISIC names as the model's HAM10000 classes, through skinml's diagnosis table:
        # melanoma -> mel, nevus -> nv, seborrheic_keratosis -> bkl (the class it is counted under)
        space = LabelSpace(meta.classes, name="the model's classes")
        labels = np.array(
            map_labels(manifest.frame["label"].tolist(), space, file=name, column="label")
        )
        probs = predict(bundle, manifest, tta, args.threads)
        results["sources"][name] = score_source(name, labels, probs, meta)
        print(json.dumps(results["sources"][name], indent=1))
    from skinml.tracking.provenance import command_provenance
    from skinml.training.bundle import run_provenance

    results["provenance"] = {
        "training_run": run_provenance(args.run_dir),
        "this_script": command_provenance(),
    }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["machine"] = {
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
