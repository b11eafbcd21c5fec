"""One image-classification run, end to end: data -> train -> calibrate -> evaluate ->
bundle -> export, tracked in MLflow. ``skinml-train`` is a thin wrapper around :func:`run`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skinml.training.bundle import BUNDLE_FILE, ModelBundle, bundle_from_run
from skinml.training.run_evaluation import (
    evaluate_and_log,
    log_dataset_card,
    log_gradcam,
    validation_metrics,
)
from skinml.training.run_report import write_run_report
from skinml.training.run_tracking import (
    describe_run,
    log_datasets,
    run_name,
    selection_metrics,
    training_record,
    write_history,
)

log = logging.getLogger(__name__)


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
    warnings: tuple[str, ...] = ()
    best_epoch: int | None = None
    test: Any = None  # the test Evaluation (counts and intervals for the console)


def _resume_checkpoint(resume: str | None, run_dir: Path) -> Path | None:
    from skinml.errors import ConfigError

    if not resume:
        return None
    path = run_dir / "checkpoints" / "last.pt" if resume == "auto" else Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        if resume == "auto":
            print(f"resume=auto: no checkpoint at {path} yet; starting a fresh run", flush=True)
            return None
        raise ConfigError(
            "resume checkpoint does not exist",
            file=path,
            fix="pass resume=auto with hydra.run.dir=<the interrupted run dir>",
        )
    return path


def _decode_splits(data: Any, prep: Any, *, threads: int, progress: bool) -> dict[str, Any]:
    """Decode train, val and test; every unreadable image of every split is listed at once.

    Stopping at the first split with a bad file would take up to three runs to
    see them all; rows refer to the split manifest written in the run directory.
    """
    import numpy as np

    from skinml.data.torch_dataset import load_resized_images
    from skinml.errors import ImageReadError, ManyErrors

    images: dict[str, Any] = {}
    errors: list[ImageReadError] = []
    column = data.manifest.frame["split"].to_numpy()
    for name in ("train", "val", "test"):
        rows = (np.flatnonzero(column == name) + 2).tolist()
        try:
            images[name] = load_resized_images(
                data.manifest.split(name),
                prep,
                threads=threads,
                progress=progress,
                rows=rows,
                source=str(data.split_manifest_path),
            )
        except ManyErrors as exc:
            errors += exc.errors  # type: ignore[arg-type]
    if errors:
        raise ManyErrors(
            f"{len(errors)} of {len(column)} images of {data.manifest.name!r} cannot be read",
            errors,  # type: ignore[arg-type]
            fix="repair or remove these files (skinml-data verify lists them), then rerun",
        )
    return images


def run(cfg: Any, run_dir: str | Path) -> RunOutcome:
    """Execute one training run described by a resolved Hydra config."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from skinml import __version__
    from skinml.data.torch_dataset import ManifestImageDataset, class_weights
    from skinml.data.transforms import build_augmentation
    from skinml.models.factory import preprocessing_for
    from skinml.tracking.provenance import git_commit, package_versions, utc_now
    from skinml.training.checkpoint import load_checkpoint
    from skinml.training.config_checks import check_train_config
    from skinml.training.data_setup import (
        encode_metadata,
        metadata_columns,
        prepare_data,
        split_targets,
    )
    from skinml.training.distributed import (
        barrier,
        broadcast_object,
        init_distributed,
        shutdown_distributed,
    )
    from skinml.training.seeding import seed_everything

    check_train_config(cfg)
    run_dir = Path(run_dir)
    # the code that trains is the code at the start: the tree may change during a long run
    commit_at_start = git_commit()
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
        columns = metadata_columns(cfg.data)
        meta_features = encode_metadata(data.manifest, columns) if columns else None
        fusion = {}
        if meta_features is not None:
            fusion = {"metadata_features": meta_features.encoding.n_features}
        if meta_features is not None and env.is_main:
            log.info(
                "metadata fusion: %d features from %s; cells encoded as unknown: %s",
                meta_features.encoding.n_features,
                columns,
                meta_features.n_unknown,
            )
        model = instantiate(cfg.model)(num_classes=len(data.classes), **fusion)
        prep = preprocessing_for(
            model,
            cfg.data.image_size,
            resize=cfg.data.resize,
            crop_pct=cfg.data.crop_pct,
            decode=str(cfg.data.get("decode", "fast")),
        )
        images = _decode_splits(
            data,
            prep,
            threads=int(cfg.data.get("decode_threads", 2)),
            progress=trainer.progress and env.is_main,
        )
        augment = build_augmentation(instantiate(cfg.augmentation.transforms), seed=cfg.seed)

        def with_metadata(split: str) -> dict[str, Any]:
            if meta_features is None:
                return {}
            kw: dict[str, Any] = {"metadata": meta_features.splits[split]}
            if split == "train":
                kw["masking"] = float(cfg.data.get("metadata_masking", 0.0))
                kw["missing_blocks"] = meta_features.encoding.column_slices()
            return kw

        train_ds = ManifestImageDataset(
            images["train"], targets["train"], prep, augment, **with_metadata("train")
        )
        val_ds = ManifestImageDataset(images["val"], targets["val"], prep, **with_metadata("val"))
        test_ds = ManifestImageDataset(
            images["test"], targets["test"], prep, **with_metadata("test")
        )

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
                validate=validation_metrics(data.classes),
                on_epoch_end=on_epoch_end,
                extra_state={"mlflow_run_id": run_id},
            )

        if not env.is_main:
            fit()
            barrier(env)
            return RunOutcome(run_dir, run_dir / BUNDLE_FILE, {}, None, None)

        dataset = data.manifest.name
        counts = {s: len(images[s]) for s in ("train", "val", "test")}
        with tracker.start(run_name=run_name(cfg, dataset), run_id=previous_run_id) as trk:
            if previous_run_id is None:
                trk.log_params(resolved)
                log_datasets(trk, data)
            else:  # MLflow params are immutable; the resumed run keeps the original ones
                trk.set_tags({"resumed_from": str(resume_path)})
            trk.log_provenance(resolved_yaml)
            trk.set_tags(
                {
                    "dataset": dataset,
                    "data_fingerprint": data.fingerprint,
                    "task": "image_classification",
                    "run_dir": str(run_dir),
                }
            )
            trk.set_description(describe_run(cfg, dataset, counts))
            trk.log_artifact(data.split_manifest_path, "data")
            log_dataset_card(trk, data, run_dir)
            if meta_features is not None:
                trk.log_dict(
                    {
                        **meta_features.encoding.to_dict(),
                        "cells_encoded_as_unknown": meta_features.n_unknown,
                    },
                    "data/metadata_input.json",
                )
            result = fit(on_epoch_end=lambda epoch, m: trk.log_epoch(m, epoch), run_id=trk.run_id)
            trk.log_artifact(write_history(result.history, run_dir))
            trk.log_metrics(selection_metrics(result, trainer.monitor))
            training = training_record(result, trainer)
            model.load_state_dict(result.best_state_dict)
            model.to("cpu").eval()
            trainer.device = "cpu" if not trainer.device.startswith("cuda") else trainer.device
            evaluation = evaluate_and_log(trk, trainer, model, val_ds, test_ds, data, cfg, run_dir)
            bundle = bundle_from_run(
                cfg,
                model,
                prep,
                data,
                evaluation,
                trk.run_id,
                __version__,
                commit_at_start,
                package_versions(),
                utc_now(),
                resolved,
                metadata_input=None if meta_features is None else meta_features.encoding.to_dict(),
                training=training,
            )
            bundle_path = bundle.save(run_dir / BUNDLE_FILE)
            trk.log_artifact(bundle_path, "bundle")
            # MLflow's PyTorch flavour takes one input tensor; a fusion model travels in the
            # bundle artifact (and the ONNX file) only.
            if cfg.tracking.get("log_model", True) and meta_features is None:
                example = torch.zeros(1, 3, *prep.input_size)
                trk.log_torch_model(model.cpu(), example.numpy())
            onnx_path = None
            if cfg.export.enabled:
                onnx_path = _export(bundle, cfg, run_dir, trk)
            notes = []
            if cfg.evaluation.gradcam_images:
                note = log_gradcam(
                    trk, model, test_ds, data, cfg.evaluation.gradcam_images, run_dir
                )
                notes += [f"Grad-CAM: {note}."] if note else []
            trk.set_description(
                describe_run(
                    cfg,
                    dataset,
                    counts,
                    training=training,
                    test=evaluation["test"],
                    warnings=evaluation["warnings"],
                    notes=notes,
                )
            )
            summary = {
                "best_epoch": result.best_epoch,  # counted from 1, as in history.csv
                "epochs_run": len(result.history),
                "stopped_early": result.stopped_early,
                **evaluation["flat"],
                "warnings": evaluation["warnings"],
            }
            (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
            trk.log_artifact(run_dir / "metrics.json")
            trk.log_artifact(write_run_report(run_dir, notes=notes))
            outcome = RunOutcome(
                run_dir,
                bundle_path,
                evaluation["flat"],
                trk.run_id,
                trk.tracking_uri,
                onnx_path,
                run_dir / "plots",
                tuple(evaluation["warnings"]),
                result.best_epoch,
                evaluation["test"],
            )
        barrier(env)
        return outcome
    finally:
        shutdown_distributed()


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
        result.card_html_path,
        result.int8_path,
        result.int8_sidecar_path,
        result.int8_card_path,
        None if result.int8_card_path is None else result.int8_card_path.with_suffix(".html"),
    )
    for path in written:
        if path is not None:
            trk.log_artifact(path, "export")
    return Path(result.onnx_path)
