"""What a training run tells MLflow about itself: a readable name, a description, its data
sets, the per-epoch history and the figures of the selected epoch.

Kept apart from :mod:`skinml.training.pipeline` so that the run's control flow stays short.
Epochs are counted from 1 here as everywhere a person reads them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: MLflow dataset context of each split
CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


def run_name(cfg: Any, dataset: str) -> str:
    """``isic_uda1-efficientnet_lite0-64px-seed0``, unless ``tracking.run_name`` is set."""
    explicit = cfg.tracking.get("run_name") if hasattr(cfg.tracking, "get") else None
    if explicit:
        return str(explicit)
    return f"{dataset}-{cfg.model.name}-{cfg.data.image_size}px-seed{cfg.seed}"


def log_datasets(trk: Any, data: Any) -> None:
    """Each split's manifest as an MLflow dataset, digest = the data fingerprint."""
    for split, context in CONTEXTS.items():
        trk.log_dataset(
            data.manifest.split(split).frame,
            name=f"{data.manifest.name}/{split}",
            fingerprint=data.fingerprint,
            context=context,
            source=str(Path(data.split_manifest_path).resolve()),
            targets="label",
        )


def write_history(history: Sequence[dict[str, float]], run_dir: Path) -> Path:
    """``history.csv``: one row per epoch (``epoch`` from 1), every per-epoch figure."""
    import pandas as pd

    path = Path(run_dir) / "history.csv"
    frame = pd.DataFrame(list(history))
    if "epoch" in frame.columns:
        frame = frame[["epoch", *[c for c in frame.columns if c != "epoch"]]]
    frame.to_csv(path, index=False)
    return path


def selection_metrics(result: Any, monitor: str) -> dict[str, float]:
    """Final figures of the model selection: best epoch, epochs run, the monitor's value there."""
    out = {"best_epoch": float(result.best_epoch), "epochs_run": float(len(result.history))}
    chosen = next((h for h in result.history if h.get("epoch") == result.best_epoch), None)
    if chosen is not None and monitor in chosen:
        out[f"selected_{monitor}"] = float(chosen[monitor])
    return out


def training_record(result: Any, trainer: Any) -> dict[str, Any]:
    """``metadata.extra["training"]``: how the exported weights were selected."""
    score = result.best_score
    return {
        "best_epoch": int(result.best_epoch),
        "epochs_run": len(result.history),
        "max_epochs": int(trainer.max_epochs),
        "monitor": trainer.monitor,
        "best_score": float(score) if math.isfinite(score) else None,
        "stopped_early": bool(result.stopped_early),
        "epoch_numbering": "from 1",
    }


def describe_run(
    cfg: Any,
    dataset: str,
    counts: dict[str, int],
    *,
    training: dict[str, Any] | None = None,
    test: Any = None,
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> str:
    """The run's MLflow description (Markdown): what was trained, what was selected, warnings."""
    lines = [
        f"Image classifier `{cfg.model.name}` on **{dataset}** at {cfg.data.image_size} px, "
        f"seed {cfg.seed}; {counts.get('train', 0)} training, {counts.get('val', 0)} validation "
        f"and {counts.get('test', 0)} test images.",
    ]
    if training is not None:
        lines.append(
            f"Selected epoch {training['best_epoch']} of {training['epochs_run']} "
            f"(max {training['max_epochs']}) on {training['monitor']}; curves are logged as "
            "`epoch/...`, the selected model's figures under plain names."
        )
    if test is not None:
        h = test.headline
        parts = [f"{k.replace('_', ' ')} {h[k]}" for k in ("macro_auc", "balanced_accuracy")]
        if test.malignant:
            parts.append(f"malignant sensitivity {h['malignant_sensitivity']}")
            parts.append(f"specificity {h['malignant_specificity']}")
        lines.append(f"Test (n={test.n}): " + "; ".join(parts) + f". Flag: {test.rule_text()}.")
    lines += [f"**Warning: {w}.**" for w in warnings]
    lines += list(notes)
    return "\n\n".join(lines)
