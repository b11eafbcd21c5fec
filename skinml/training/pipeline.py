"""One image-classification run, end to end: data -> train -> calibrate -> evaluate ->
bundle -> export, tracked in MLflow. ``skinml-train`` is a thin wrapper around :func:`run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skinml.training.bundle import BUNDLE_FILE, ModelBundle


@dataclass
class RunOutcome:
    """Where a run put its results, and its headline test metrics."""

    run_dir: Path
    bundle_path: Path
    metrics: dict[str, float]
    mlflow_run_id: str | None
    tracking_uri: str | None
    onnx_path: Path | None = None
    plots_dir: Path | None = None


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _validation_metrics(classes: list[str]):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    def validate(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        probs = _softmax(logits)
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


def _resume_checkpoint(resume: str | None, run_dir: Path) -> Path | None:
    from skinml.errors import ConfigError

    if not resume:
        return None
    path = run_dir / "checkpoints" / "last.pt" if resume == "auto" else Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        if resume == "auto":
            return None  # nothing to resume yet: a fresh start
        raise ConfigError(
            "resume checkpoint does not exist",
            file=path,
            fix="pass resume=auto with hydra.run.dir=<the interrupted run dir>",
        )
    return path


def run(cfg: Any, run_dir: str | Path) -> RunOutcome:
    """Execute one training run described by a resolved Hydra config."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from skinml import __version__
    from skinml.data.torch_dataset import ManifestImageDataset, class_weights, load_resized_images
    from skinml.data.transforms import build_augmentation
    from skinml.models.factory import preprocessing_for
    from skinml.tracking.provenance import git_commit, package_versions, utc_now
    from skinml.training.checkpoint import load_checkpoint
    from skinml.training.data_setup import prepare_data, split_targets
    from skinml.training.distributed import (
        barrier,
        broadcast_object,
        init_distributed,
        shutdown_distributed,
    )
    from skinml.training.seeding import seed_everything

    run_dir = Path(run_dir)
    trainer = instantiate(cfg.trainer)
    env = init_distributed("cuda" if trainer.device.startswith("cuda") else "cpu")
    if env.is_distributed and trainer.device.startswith("cuda"):
        trainer.device = f"cuda:{env.local_rank}"
        torch.cuda.set_device(env.local_rank)
    # Every rank runs Hydra and may get its own timestamped directory: use rank 0's.
    run_dir = Path(broadcast_object(str(run_dir), env))
    seed_everything(cfg.seed)
    try:
        data = prepare_data(cfg.data, seed=cfg.seed, run_dir=run_dir, write=env.is_main)
        targets = split_targets(data.manifest, data.classes)
        model = instantiate(cfg.model)(num_classes=len(data.classes))
        prep = preprocessing_for(
            model, cfg.data.image_size, resize=cfg.data.resize, crop_pct=cfg.data.crop_pct
        )
        threads = int(cfg.data.get("decode_threads", 2))
        images = {
            s: load_resized_images(
                data.manifest.split(s),
                prep,
                threads=threads,
                progress=trainer.progress and env.is_main,
            )
            for s in ("train", "val", "test")
        }
        augment = build_augmentation(instantiate(cfg.augmentation.transforms), seed=cfg.seed)
        train_ds = ManifestImageDataset(images["train"], targets["train"], prep, augment)
        val_ds = ManifestImageDataset(images["val"], targets["val"], prep)
        test_ds = ManifestImageDataset(images["test"], targets["test"], prep)

        balance = cfg.data.class_balance
        weights = class_weights(targets["train"], len(data.classes), cfg.data.balance_power)
        loss_weights = weights if balance == "loss_weights" else None
        sample_weights = weights[targets["train"]] if balance == "sampler" else None

        resume_path = _resume_checkpoint(cfg.get("resume"), run_dir)
        previous_run_id = None
        if resume_path is not None:
            previous_run_id = load_checkpoint(resume_path).get("extra", {}).get("mlflow_run_id")
        tracker = instantiate(cfg.tracking) if env.is_main else None
        resolved = OmegaConf.to_container(cfg, resolve=True)
        resolved_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        if env.is_main:
            (run_dir / "resolved_config.yaml").write_text(resolved_yaml, encoding="utf-8")
        scheduler_factory = instantiate(cfg.scheduler) if cfg.get("scheduler") else None

        def fit(on_epoch_end=None, run_id=None):
            return trainer.fit(
                model,
                train_ds,
                val_ds,
                optimizer_factory=instantiate(cfg.optim),
                scheduler_factory=scheduler_factory,
                checkpoint_dir=run_dir / "checkpoints",
                seed=cfg.seed,
                loss_weights=loss_weights,
                sample_weights=sample_weights,
                resume_from=resume_path,
                env=env,
                validate=_validation_metrics(data.classes),
                on_epoch_end=on_epoch_end,
                extra_state={"mlflow_run_id": run_id},
            )

        if not env.is_main:
            fit()
            barrier(env)
            return RunOutcome(run_dir, run_dir / BUNDLE_FILE, {}, None, None)

        with tracker.start(
            run_name=cfg.tracking.get("run_name") or run_dir.name, run_id=previous_run_id
        ) as trk:
            if previous_run_id is None:
                trk.log_params(resolved)
            else:  # MLflow params are immutable; the resumed run keeps the original ones
                trk.set_tags({"resumed_from": str(resume_path)})
            record = trk.log_provenance(resolved_yaml)
            trk.set_tags(
                {
                    "dataset": data.manifest.name,
                    "data_fingerprint": data.fingerprint,
                    "task": "image_classification",
                }
            )
            trk.log_artifact(data.split_manifest_path, "data")
            _log_dataset_card(trk, data, run_dir)
            result = fit(
                on_epoch_end=lambda epoch, m: trk.log_metrics(m, step=epoch), run_id=trk.run_id
            )
            model.load_state_dict(result.best_state_dict)
            model.to("cpu").eval()
            trainer.device = "cpu" if not trainer.device.startswith("cuda") else trainer.device
            evaluation = _evaluate_and_log(trk, trainer, model, val_ds, test_ds, data, cfg, run_dir)
            bundle = _make_bundle(
                cfg,
                model,
                prep,
                data,
                evaluation,
                record,
                trk.run_id,
                __version__,
                git_commit(),
                package_versions(),
                utc_now(),
                resolved,
            )
            bundle_path = bundle.save(run_dir / BUNDLE_FILE)
            trk.log_artifact(bundle_path, "bundle")
            if cfg.tracking.get("log_model", True):
                example = torch.zeros(1, 3, *prep.input_size)
                trk.log_torch_model(model.cpu(), example.numpy())
            onnx_path = None
            if cfg.export.enabled:
                onnx_path = _export(bundle, cfg, run_dir, trk)
            if cfg.evaluation.gradcam_images:
                _log_gradcam(trk, model, test_ds, data, cfg.evaluation.gradcam_images, run_dir)
            summary = {
                "best_epoch": result.best_epoch,
                "stopped_early": result.stopped_early,
                **evaluation["flat"],
            }
            (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
            trk.log_artifact(run_dir / "metrics.json")
            outcome = RunOutcome(
                run_dir,
                bundle_path,
                evaluation["flat"],
                trk.run_id,
                trk.tracking_uri,
                onnx_path,
                run_dir / "plots",
            )
        barrier(env)
        return outcome
    finally:
        shutdown_distributed()


def _log_dataset_card(trk: Any, data: Any, run_dir: Path) -> None:
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


def _evaluate_and_log(trk, trainer, model, val_ds, test_ds, data, cfg, run_dir: Path) -> dict:
    """Calibrate and choose thresholds on validation; evaluate on test with CIs; plot."""
    import pandas as pd

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

    ev = cfg.evaluation
    val_logits, y_val = trainer.predict_logits(model, val_ds)
    test_logits, y_test = trainer.predict_logits(model, test_ds)
    scaler = TemperatureScaler().fit(val_logits, y_val)
    p_val, p_test = scaler.predict_proba(val_logits), scaler.predict_proba(test_logits)
    p_test_raw = _softmax(test_logits)
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
    thr = threshold  # the fitted picker: evaluations record the rule that chose it
    val_eval = evaluate(
        y_val,
        p_val,
        data.classes,
        data.malignant,
        threshold=thr,
        split="val",
        groups=data.manifest.split("val").frame["patient_id"].to_numpy(),
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
        probs_before_calibration=p_test_raw,
        **kw,
    )
    flat = {**val_eval.flat_metrics("val_"), **test_eval.flat_metrics("test_")}
    flat["temperature"] = float(scaler.temperature_)
    flat["test_ece_before_calibration"] = float(expected_calibration_error(y_test, p_test_raw))
    flat["test_ece_after_calibration"] = float(expected_calibration_error(y_test, p_test))
    if threshold is not None:
        flat["malignant_threshold"] = float(threshold.threshold_)
    trk.log_metrics(flat)

    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    figures = {
        "confusion_matrix_test.png": plot_confusion_matrix(test_eval.confusion, data.classes),
        "roc_test.png": plot_roc_curves(y_test, p_test, data.classes),
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
        run_dir / "confusion_matrix_test.csv"
    )
    test_eval.per_class.to_csv(run_dir / "per_class_test.csv", index=False)
    for name in ("confusion_matrix_test.csv", "per_class_test.csv"):
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
        "ece_before": flat["test_ece_before_calibration"],
        "ece_after": flat["test_ece_after_calibration"],
    }


def _make_bundle(
    cfg, model, prep, data, evaluation, record, run_id, version, commit, packages, created, resolved
) -> ModelBundle:
    from skinml.modelfile.metadata import (
        Calibration,
        MetricWithCI,
        ModelMetadata,
        OperatingThreshold,
        Provenance,
    )

    metrics = {}
    for split in ("val", "test"):
        for name, ci in evaluation[split].headline.items():
            metrics[f"{split}_{name}"] = MetricWithCI(
                value=float(ci.value),
                ci_low=_f(ci.ci_low),
                ci_high=_f(ci.ci_high),
                split=split,
                n=int(ci.n),
                n_bootstrap=int(ci.n_bootstrap),
                seed=int(ci.seed),
            )
    thresholds = ()
    picker = evaluation["threshold"]
    if picker is not None:
        thresholds = (
            OperatingThreshold(
                name="malignant",
                threshold=float(picker.threshold_),
                rule=picker.rule_,
                chosen_on="validation",
                validation_sensitivity=float(picker.sensitivity_),
                validation_specificity=float(picker.specificity_),
            ),
        )
    meta = ModelMetadata(
        task="image_classification",
        classes=tuple(data.classes),
        malignant=tuple(data.malignant),
        provenance=Provenance(
            skinml_version=version,
            created_utc=created,
            git_commit=commit,
            data_fingerprint=data.fingerprint,
            dataset=data.manifest.name,
            mlflow_run_id=run_id,
            training_config=resolved,
            package_versions=packages,
        ),
        inputs={},
        outputs={},
        preprocessing=prep,
        calibration=Calibration(
            method="temperature",
            temperature=float(evaluation["scaler"].temperature_),
            fitted_on="validation",
            ece_before=evaluation["ece_before"],
            ece_after=evaluation["ece_after"],
        ),
        thresholds=thresholds,
        metrics=metrics,
        intended_use=str(cfg.export.intended_use),
        limitations=str(cfg.export.limitations),
    )
    return ModelBundle(
        architecture=str(cfg.model.name),
        model_kwargs={"num_classes": len(data.classes), "drop_rate": float(cfg.model.drop_rate)},
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
        metadata=meta,
        split_manifest=str(data.split_manifest_path.resolve()),
    )


def _f(x: float) -> float | None:
    return None if x is None or x != x else float(x)


def _export(bundle: ModelBundle, cfg, run_dir: Path, trk) -> Path:
    from skinml.export import export_bundle

    result = export_bundle(
        bundle,
        run_dir / "model.onnx",
        quantize=cfg.export.quantize,
        max_accuracy_loss=cfg.export.max_accuracy_loss,
    )
    written = (
        result.onnx_path,
        result.sidecar_path,
        result.card_path,
        result.int8_path,
        result.int8_sidecar_path,
        result.int8_card_path,
    )
    for path in written:
        if path is not None:
            trk.log_artifact(path, "export")
    return Path(result.onnx_path)


def _log_gradcam(trk, model, test_ds, data, n_images: int, run_dir: Path) -> None:
    """Grad-CAM overlays for the first test images of each class (round-robin)."""
    import torch

    from skinml.explain import gradcam_overlays, save_overlay_grid

    targets = test_ds.targets
    order = []
    for k in range(len(data.classes)):
        order.extend(np.flatnonzero(targets == k)[: max(1, n_images // len(data.classes))].tolist())
    order = order[:n_images]
    if not order:
        return
    x = torch.stack([test_ds[i][0] for i in order])
    rgb = [test_ds.images[i].astype(np.float32) / 255.0 for i in order]
    with torch.no_grad():
        pred = model(x).argmax(1).tolist()
    overlays = gradcam_overlays(model, x, rgb, targets=pred)
    captions = [
        f"true {data.classes[targets[i]]} / pred {data.classes[p]}"
        for i, p in zip(order, pred, strict=True)
    ]
    path = save_overlay_grid(overlays, captions, run_dir / "plots" / "gradcam_test.png")
    trk.log_artifact(path, "plots")
