"""The evaluation half of a training run: per-epoch validation metrics, then calibration,
thresholds, test metrics with CIs, subgroup tables, plots and Grad-CAM, all logged to the
tracker. Kept apart from :mod:`skinml.training.pipeline` so the run's control flow reads
in one screen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

#: suffixes of interval bounds in ``Evaluation.flat_metrics`` (kept out of MLflow metrics)
CI_SUFFIXES = ("_ci_low", "_ci_high")


def validation_metrics(classes: list[str]):
    """``(logits, targets) -> metrics`` for the trainer's per-epoch validation."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    def validate(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        probs = softmax(logits, axis=1)
        pred = probs.argmax(1)
        out = {
            "val_accuracy": float(accuracy_score(targets, pred)),
            "val_balanced_accuracy": float(balanced_accuracy_score(targets, pred)),
        }
        present = np.unique(targets)
        if len(present) > 1:
            try:
                if len(classes) == 2:
                    out["val_macro_auc"] = float(roc_auc_score(targets, probs[:, 1]))
                elif len(present) == len(classes):
                    out["val_macro_auc"] = float(roc_auc_score(targets, probs, multi_class="ovr"))
            except ValueError:
                pass
        return out

    return validate


def log_dataset_card(trk: Any, data: Any, run_dir: Path) -> None:
    """The data card of exactly what this run trained on (split counts, fingerprint, licence)."""
    from skinml.data.card import DatasetInfo, build_card
    from skinml.data.registry import get_dataset_info, list_datasets

    name = data.manifest.name
    info = (
        get_dataset_info(name)
        if name in list_datasets()
        else DatasetInfo(name=name, title=name, malignant=tuple(data.malignant))
    )
    card = build_card(data.manifest, info, fingerprint=data.fingerprint)
    path = run_dir / "dataset_card.md"
    path.write_text(card.to_markdown(), encoding="utf-8")
    trk.log_artifact(path, "data")
    trk.log_dict(card.to_dict(), "data/dataset_card.json")


def evaluate_and_log(trk, trainer, model, val_ds, test_ds, data, cfg, run_dir: Path) -> dict:
    """Calibrate and choose thresholds on validation; evaluate on test with CIs; plot.

    Validation and test logits come from the same :meth:`Trainer.predict_logits`, with
    the trainer's TTA views; the returned ``tta_views`` go into the model file so that its
    graph computes the logits the temperature, thresholds and ``predictions_test.csv``
    were computed from.
    """
    import pandas as pd

    from skinml.data.manifest import cluster_unit
    from skinml.evaluation import (
        MalignancyThreshold,
        TemperatureScaler,
        age_band,
        evaluate,
        expected_calibration_error,
        malignant_probability,
        plot_confusion_matrix,
        plot_reliability,
        plot_roc_curves,
        plot_subgroups,
        subgroup_table,
    )
    from skinml.evaluation.verdict import evaluation_warnings

    ev = cfg.evaluation
    val_logits, y_val = trainer.predict_logits(model, val_ds)
    test_logits, y_test = trainer.predict_logits(model, test_ds)
    scaler = TemperatureScaler().fit(val_logits, y_val)
    p_val, p_test = scaler.predict_proba(val_logits), scaler.predict_proba(test_logits)
    p_test_raw = softmax(test_logits, axis=1)
    threshold = None
    if data.malignant:
        picker = MalignancyThreshold(target_sensitivity=ev.target_sensitivity).fit(
            malignant_probability(p_val, data.classes, data.malignant),
            np.isin(np.array(data.classes)[y_val], data.malignant),
        )
        threshold = picker
    test_frame = data.manifest.split("test").frame.copy()
    groups = test_frame["patient_id"].to_numpy()
    kw = {"n_bootstrap": ev.n_bootstrap, "seed": cfg.seed}
    unit = cluster_unit(data.manifest.frame)  # "lesions" where patient IDs are missing
    thr = threshold  # the fitted picker: evaluations record the rule that chose it
    val_eval = evaluate(
        y_val,
        p_val,
        data.classes,
        data.malignant,
        threshold=thr,
        split="val",
        groups=data.manifest.split("val").frame["patient_id"].to_numpy(),
        group_unit=unit,
        **kw,
    )
    test_eval = evaluate(
        y_test,
        p_test,
        data.classes,
        data.malignant,
        threshold=thr,
        split="test",
        groups=groups,
        group_unit=unit,
        probs_before_calibration=p_test_raw,
        **kw,
    )
    flat = {**val_eval.flat_metrics("val_"), **test_eval.flat_metrics("test_")}
    flat["temperature"] = float(scaler.temperature_)
    flat["test_ece_before_calibration"] = float(expected_calibration_error(y_test, p_test_raw))
    flat["test_ece_after_calibration"] = float(expected_calibration_error(y_test, p_test))
    if threshold is not None:
        flat["malignant_threshold"] = float(threshold.threshold_)
    # intervals go to a table artifact, not into metric keys that bury the curves
    trk.log_metrics({k: v for k, v in flat.items() if not k.endswith(CI_SUFFIXES)})
    intervals = pd.concat([val_eval.interval_table(), test_eval.interval_table()])
    intervals.to_csv(run_dir / "metrics_with_ci.csv", index=False)
    trk.log_table(intervals, "evaluation/metrics_with_ci.json")
    trk.log_artifact(run_dir / "metrics_with_ci.csv", "evaluation")
    warnings = evaluation_warnings(test_eval)

    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    figures = {
        "confusion_matrix_test.png": plot_confusion_matrix(test_eval.confusion, data.classes),
        "roc_test.png": plot_roc_curves(
            y_test,
            p_test,
            data.classes,
            malignant=data.malignant or None,
            threshold=test_eval.threshold,
            title="ROC curves (one-vs-rest; o = malignancy threshold chosen on validation)",
        ),
        "reliability_test.png": plot_reliability(y_test, p_test_raw, p_test),
    }
    if "age" in test_frame.columns:
        test_frame["age_band"] = age_band(test_frame["age"])
    cols = [c for c in ev.subgroup_columns if c in test_frame.columns]
    subgroups = subgroup_table(
        y_test,
        p_test,
        data.classes,
        data.malignant,
        test_frame,
        columns=tuple(cols),
        min_n=ev.subgroup_min_n,
        threshold=thr,
        **kw,
    )
    subgroups.to_csv(run_dir / "subgroups_test.csv", index=False)
    trk.log_artifact(run_dir / "subgroups_test.csv", "evaluation")
    if len(subgroups):
        figures["subgroups_test.png"] = plot_subgroups(subgroups)
    for name, fig in figures.items():
        fig.savefig(plots / name, dpi=120, bbox_inches="tight")
        trk.log_figure(fig, f"plots/{name}")
    pd.DataFrame(test_eval.confusion, index=data.classes, columns=data.classes).to_csv(
        run_dir / "confusion_matrix_test.csv", index_label="true \\ predicted (arg-max)"
    )
    test_eval.per_class.to_csv(run_dir / "per_class_test.csv", index=False)
    test_predictions_frame(
        data.manifest.split("test"), data.classes, y_test, p_test, base=run_dir
    ).to_csv(run_dir / "predictions_test.csv", index=False)
    for name in ("confusion_matrix_test.csv", "per_class_test.csv", "predictions_test.csv"):
        trk.log_artifact(run_dir / name, "evaluation")
    (run_dir / "evaluation.json").write_text(
        json.dumps(
            {"val": val_eval.to_dict(), "test": test_eval.to_dict()}, indent=2, default=float
        ),
        encoding="utf-8",
    )
    trk.log_artifact(run_dir / "evaluation.json", "evaluation")
    return {
        "flat": flat,
        "val": val_eval,
        "test": test_eval,
        "scaler": scaler,
        "threshold": threshold,
        "tta_views": trainer.tta_views,
        "ece_before": flat["test_ece_before_calibration"],
        "ece_after": flat["test_ece_after_calibration"],
        "warnings": warnings,
    }


def test_predictions_frame(
    manifest: Any, classes: list[str], targets: np.ndarray, probs: np.ndarray, *, base: Path
) -> Any:
    """One row per test image: identifiers, true class and calibrated probabilities.

    Image paths are written as in ``split_manifest.csv`` (relative to the run directory,
    where both files live), so the two join on ``image``. Lets researchers compute any
    metric after the run (e.g. one class against the rest) without re-running inference.
    """
    from skinml.data.manifest import relative_path

    frame = manifest.frame
    keep = [c for c in ("patient_id", "lesion_id", "site") if c in frame.columns]
    out = frame[keep].reset_index(drop=True).copy()
    out.insert(0, "image", [relative_path(p, base) for p in manifest.paths()])
    out["label"] = np.asarray(classes)[targets]
    for k, name in enumerate(classes):
        out[f"p_{name}"] = probs[:, k]
    out["predicted"] = np.asarray(classes)[probs.argmax(1)]
    return out


def log_gradcam(trk, model, test_ds, data, n_images: int, run_dir: Path) -> str | None:
    """Grad-CAM overlays for the first test images of each class (round-robin).

    A metadata-fusion model predicts with its metadata and is explained through its image
    path (:class:`~skinml.models.fusion.ImagePathView`), whose Grad-CAM maps are the full
    model's: the metadata adds a per-image constant to each logit.

    Returns:
        The coarse-map note when the explained feature map is smaller than
        :data:`~skinml.explain.MIN_CAM_SIDE` per side (the grid's title says it too).
    """
    import torch

    from skinml.explain import (
        coarse_cam_note,
        feature_map_size,
        gradcam_overlays,
        save_overlay_grid,
    )
    from skinml.models.fusion import ImagePathView, is_fusion_model

    targets = test_ds.targets
    order = []
    for k in range(len(data.classes)):
        order.extend(np.flatnonzero(targets == k)[: max(1, n_images // len(data.classes))].tolist())
    order = order[:n_images]
    if not order:
        return None
    items = [test_ds[i][0] for i in order]
    fusion = is_fusion_model(model)
    x = torch.stack([it[0] for it in items] if fusion else items)
    inputs = (x, torch.stack([it[1] for it in items])) if fusion else (x,)
    rgb = [test_ds.images[i].astype(np.float32) / 255.0 for i in order]
    with torch.no_grad():
        pred = model(*inputs).argmax(1).tolist()
    explained = ImagePathView(model) if fusion else model
    note = coarse_cam_note(*feature_map_size(explained, x[:1]))
    overlays = gradcam_overlays(explained, x, rgb, targets=pred)
    captions = [
        f"true {data.classes[targets[i]]} / pred {data.classes[p]}"
        for i, p in zip(order, pred, strict=True)
    ]
    title = f"Grad-CAM: {note}" if note else "Grad-CAM"
    path = save_overlay_grid(
        overlays, captions, run_dir / "plots" / "gradcam_test.png", title=title
    )
    trk.log_artifact(path, "plots")
    if note:
        trk.set_tags({"gradcam": note})
    return note
