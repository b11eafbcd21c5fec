"""A normal skinml model at the end of a federation: calibrated, thresholded, evaluated per
site and pooled, bundled and exported to the same ONNX contract as ``skinml-train``.

The hospitals send the final global model's logits on their validation and test images
(with the true class and an anonymous cluster number, nothing else). Temperature and the
malignancy threshold are fitted on the pooled validation predictions, exactly as
``skinml-train`` fits them on its validation split; test metrics with bootstrap CIs are
computed per site and pooled, clusters kept apart by site.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax


@dataclass
class Pooled:
    """One split's predictions from every site, in site order."""

    logits: np.ndarray
    targets: np.ndarray
    groups: np.ndarray  # "site/cluster": a patient never spans two sites' clusters
    sites: np.ndarray


def pool(predictions: dict[str, dict[str, np.ndarray]], split: str) -> Pooled:
    """Stack the sites' ``{split}_logits/_targets/_clusters`` arrays."""
    order = sorted(predictions)
    parts = [predictions[s] for s in order]
    return Pooled(
        logits=np.concatenate([p[f"{split}_logits"] for p in parts]),
        targets=np.concatenate([p[f"{split}_targets"] for p in parts]).astype(np.int64),
        groups=np.concatenate(
            [
                np.char.add(f"{s}/", p[f"{split}_clusters"].astype(str))
                for s, p in zip(order, parts, strict=True)
            ]
        ),
        sites=np.concatenate(
            [np.full(len(p[f"{split}_targets"]), s) for s, p in zip(order, parts, strict=True)]
        ),
    )


def federation_fingerprint(site_fingerprints: dict[str, str]) -> str:
    """SHA-256 of the sites' own data fingerprints (names sorted): changes when any site's
    images or split change, and reveals nothing about them."""
    h = hashlib.sha256(b"skinml-federation-fingerprint-1\n")
    for site in sorted(site_fingerprints):
        h.update(f"{site}\t{site_fingerprints[site]}\n".encode())
    return h.hexdigest()


def calibrate_and_evaluate(
    predictions: dict[str, dict[str, np.ndarray]],
    classes: list[str],
    malignant: list[str],
    ev_cfg: Any,
    *,
    seed: int,
    group_unit: str,
) -> dict[str, Any]:
    """Temperature and threshold on pooled validation; test metrics pooled and per site.

    Returns:
        ``skinml-train``'s evaluation dict (``val``, ``test``, ``scaler``, ``threshold``,
        ``flat``, ...) plus ``sites``: ``{site: test Evaluation}``.
    """
    from skinml.evaluation import (
        MalignancyThreshold,
        TemperatureScaler,
        evaluate,
        expected_calibration_error,
        malignant_probability,
    )
    from skinml.evaluation.verdict import evaluation_warnings

    val, test = pool(predictions, "val"), pool(predictions, "test")
    scaler = TemperatureScaler().fit(val.logits, val.targets)
    p_val, p_test = scaler.predict_proba(val.logits), scaler.predict_proba(test.logits)
    p_test_raw = softmax(test.logits, axis=1)
    threshold = None
    if malignant:
        threshold = MalignancyThreshold(target_sensitivity=ev_cfg.target_sensitivity).fit(
            malignant_probability(p_val, classes, malignant),
            np.isin(np.array(classes)[val.targets], malignant),
        )
    kw = {"n_bootstrap": int(ev_cfg.n_bootstrap), "seed": seed, "group_unit": group_unit}
    val_eval = evaluate(
        val.targets, p_val, classes, malignant, threshold=threshold, split="val",
        groups=val.groups, **kw,
    )  # fmt: skip
    test_eval = evaluate(
        test.targets, p_test, classes, malignant, threshold=threshold, split="test",
        groups=test.groups, probs_before_calibration=p_test_raw, **kw,
    )  # fmt: skip
    sites = {}
    for site in sorted(predictions):
        rows = test.sites == site
        if rows.sum() == 0:
            continue
        sites[site] = evaluate(
            test.targets[rows], p_test[rows], classes, malignant, threshold=threshold,
            split="test", groups=test.groups[rows], **kw,
        )  # fmt: skip
    flat = {**val_eval.flat_metrics("val_"), **test_eval.flat_metrics("test_")}
    flat["temperature"] = float(scaler.temperature_)
    flat["test_ece_before_calibration"] = float(
        expected_calibration_error(test.targets, p_test_raw)
    )
    flat["test_ece_after_calibration"] = float(expected_calibration_error(test.targets, p_test))
    if threshold is not None:
        flat["malignant_threshold"] = float(threshold.threshold_)
    return {
        "flat": flat,
        "val": val_eval,
        "test": test_eval,
        "sites": sites,
        "scaler": scaler,
        "threshold": threshold,
        "tta_views": (),
        "ece_before": flat["test_ece_before_calibration"],
        "ece_after": flat["test_ece_after_calibration"],
        "warnings": evaluation_warnings(test_eval),
        "p_test": p_test,
        "p_test_raw": p_test_raw,
        "test_pooled": test,
    }


HEADLINE = ("balanced_accuracy", "macro_auc", "accuracy", "malignant_sensitivity",
            "malignant_specificity")  # fmt: skip


def site_table(evaluation: dict[str, Any]) -> pd.DataFrame:
    """One row per site and one pooled row: n and the headline metrics with 95% CIs."""
    rows = []
    items = [*evaluation["sites"].items(), ("pooled", evaluation["test"])]
    for site, ev in items:
        row: dict[str, Any] = {"site": site, "n": ev.n}
        for name in HEADLINE:
            ci = ev.headline.get(name)
            if ci is None:
                continue
            row[name] = ci.value
            row[f"{name}_ci_low"] = ci.ci_low
            row[f"{name}_ci_high"] = ci.ci_high
        rows.append(row)
    return pd.DataFrame(rows)


def write_evaluation(evaluation: dict[str, Any], classes: list[str], run_dir: Path) -> list[Path]:
    """The evaluation files of a federated run (same names as ``skinml-train``'s where they
    mean the same), plus ``per_site_test.csv``; returns the paths written."""
    from skinml.evaluation import plot_confusion_matrix, plot_reliability, plot_roc_curves

    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    test = evaluation["test_pooled"]
    written = []
    intervals = pd.concat(
        [evaluation["val"].interval_table(), evaluation["test"].interval_table()]
        + [ev.interval_table().assign(site=site) for site, ev in evaluation["sites"].items()]
    )
    for name, frame in (
        ("metrics_with_ci.csv", intervals),
        ("per_site_test.csv", site_table(evaluation)),
    ):
        frame.to_csv(run_dir / name, index=False)
        written.append(run_dir / name)
    predictions = pd.DataFrame({"site": test.sites, "label": np.asarray(classes)[test.targets]})
    for k, c in enumerate(classes):
        predictions[f"p_{c}"] = evaluation["p_test"][:, k]
    predictions["predicted"] = np.asarray(classes)[evaluation["p_test"].argmax(1)]
    predictions.to_csv(run_dir / "predictions_test.csv", index=False)
    written.append(run_dir / "predictions_test.csv")
    document = {
        "val": evaluation["val"].to_dict(),
        "test": evaluation["test"].to_dict(),
        "sites": {s: ev.to_dict() for s, ev in evaluation["sites"].items()},
    }
    (run_dir / "evaluation.json").write_text(
        json.dumps(document, indent=2, default=float), encoding="utf-8"
    )
    written.append(run_dir / "evaluation.json")
    figures = {
        "confusion_matrix_test.png": plot_confusion_matrix(evaluation["test"].confusion, classes),
        "roc_test.png": plot_roc_curves(test.targets, evaluation["p_test"], classes),
        "reliability_test.png": plot_reliability(
            test.targets, evaluation["p_test_raw"], evaluation["p_test"]
        ),
    }
    for name, fig in figures.items():
        fig.savefig(plots / name, dpi=120, bbox_inches="tight")
        written.append(plots / name)
    return written


def verification_manifest(cfg: Any, run_dir: Path, pooled_manifest: Path | None) -> Path:
    """Images the server may open to verify the ONNX export against PyTorch.

    ``federation.verify_manifest`` when set; else the pooled split manifest when the server
    has one (simulation: everything is on one machine); else the embedded CC0 ISIC sample
    (113 dermoscopy images that are free to hold anywhere), all as ``val``.
    """
    from skinml.data.manifest import Manifest, write_manifest

    given = cfg.federation.get("verify_manifest")
    if given:
        return Path(given)
    if pooled_manifest is not None and Path(pooled_manifest).is_file():
        return Path(pooled_manifest)
    from skinml.data.registry import get_dataset

    sample = get_dataset("isic_uda1")
    sample = getattr(sample, "manifest", sample)
    frame = sample.frame.assign(split="val")
    path = run_dir / "verify_manifest.csv"
    write_manifest(Manifest(frame, sample.root, "isic_uda1"), path)
    return path
