"""The training loop: class balance, AMP on CUDA, channels_last, DDP, fine-tuning
(backbone learning-rate scale, weight EMA), early stopping, a checkpoint every epoch
and exact resume.

Exact resume works because everything random in an epoch (sample order,
augmentation, dropout) is derived from ``(seed, epoch)`` and the model,
optimizer, scheduler and early-stopping state are restored from the
end-of-epoch checkpoint: an interrupted epoch is simply replayed.

Epochs are counted from 1 wherever a person reads them: the console
("epoch 3/15", "best epoch 3"), ``FitResult.best_epoch``, the history,
``on_epoch_end``, checkpoints (``epoch_003.pt``) and, through the pipeline,
MLflow steps, ``history.csv``, ``metrics.json`` and the model card. Only the
seeds use the 0-based epoch index, so that runs stay reproducible.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skinml.training.checkpoint import load_checkpoint, save_checkpoint
from skinml.training.distributed import DistEnv, EpochSampler, all_reduce_mean, broadcast_object
from skinml.training.seeding import epoch_seed

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
#: marks checkpoints whose epoch counts start at 1 (older ones counted from 0)
EPOCH_NUMBERING = "from 1"


@dataclass
class FitResult:
    """What training produced: the best epoch's weights and the per-epoch history.

    ``best_epoch`` and the history's ``epoch`` count from 1 (0: no epoch was run).
    """

    best_epoch: int
    best_score: float
    best_state_dict: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def _epoch_summary(
    epoch: int, max_epochs: int, metrics: dict[str, float], monitor: str, best: dict
) -> str:
    """One log line per epoch (counted from 1): a run without progress bars shows its place."""
    shown = ("train_loss", "val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_auc")
    parts = [f"{k}={metrics[k]:.4f}" for k in shown if k in metrics]
    if monitor not in shown and monitor in metrics:
        parts.append(f"{monitor}={metrics[monitor]:.4f}")
    flag = " *best*" if best["epoch"] == epoch else f" (best epoch {best['epoch']})"
    return (
        f"epoch {epoch}/{max_epochs} "
        + " ".join(parts)
        + f" {metrics.get('train_images_per_s', 0):.0f} img/s"
        f" {metrics.get('epoch_time_s', 0):.1f} s{flag}"
    )


def model_inputs(x: Any) -> tuple[Any, ...]:
    """A batch's model inputs as a tuple: ``(image,)`` or ``(image, metadata)``."""
    return tuple(x) if isinstance(x, list | tuple) else (x,)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Trainer:
    """Fits a classifier; configured from ``configs/trainer/*.yaml``.

    Args:
        max_epochs: upper bound on epochs.
        batch_size / eval_batch_size: per-process batch sizes.
        device: ``auto``, ``cpu`` or ``cuda``.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 + GradScaler).
        channels_last: NHWC memory format (faster convolutions on tensor cores, and
            1.5-1.8x faster EfficientNet training on CPU: experiments/train_throughput).
        early_stopping_patience: epochs without improvement of ``monitor`` before stopping.
        monitor: validation metric to maximise (``val_balanced_accuracy`` by default,
            because plain accuracy rewards predicting the majority class).
        grad_clip_norm: clip the gradient norm (None = off).
        num_workers: DataLoader workers (0 = in process; deterministic on CPU).
        tta: average the logits of the flip views (:data:`~skinml.modelfile.tta.TTA_VIEWS`)
            for the calibration, thresholds and test metrics; the model file records the
            views and its graph averages them the same way.
        progress: show tqdm bars.
        threads: torch CPU threads (None = torch default).
        max_steps_per_epoch: cap for quick tests.
        backbone_lr_scale: learning rate of the backbone relative to the head's (``optim.lr``);
            0.1-0.3 suits ImageNet-pretrained backbones. Needs a scheduler that keeps per-group
            rates (``scheduler=warmup_cosine``), which is checked.
        no_weight_decay_1d: exempt biases and normalisation weights from weight decay.
        ema_decay: keep an exponential moving average of the weights (timm ``ModelEmaV3``,
            with warm-up) and validate, select and export the averaged weights; None = off.
    """

    def __init__(
        self,
        max_epochs: int = 10,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        device: str = "auto",
        amp: bool = True,
        channels_last: bool = True,
        early_stopping_patience: int = 5,
        monitor: str = "val_balanced_accuracy",
        grad_clip_norm: float | None = None,
        num_workers: int = 0,
        tta: bool = False,
        progress: bool = True,
        threads: int | None = None,
        max_steps_per_epoch: int | None = None,
        keep_every_epoch: bool = False,
        backbone_lr_scale: float = 1.0,
        no_weight_decay_1d: bool = False,
        ema_decay: float | None = None,
    ) -> None:
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.device = resolve_device(device)
        self.amp = amp
        self.channels_last = channels_last
        self.early_stopping_patience = early_stopping_patience
        self.monitor = monitor
        self.grad_clip_norm = grad_clip_norm
        self.num_workers = num_workers
        self.tta = tta
        self.progress = progress
        self.threads = threads
        self.max_steps_per_epoch = max_steps_per_epoch
        self.keep_every_epoch = keep_every_epoch
        self.backbone_lr_scale = backbone_lr_scale
        self.no_weight_decay_1d = no_weight_decay_1d
        self.ema_decay = ema_decay

    # -- helpers ---------------------------------------------------------------------------
    @property
    def _cuda(self) -> bool:
        return self.device.startswith("cuda")

    def _autocast(self):
        import contextlib

        import torch

        if self._cuda and self.amp:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast(device_type="cuda", dtype=dtype)
        return contextlib.nullcontext()

    def _to_device(self, x):
        """Move a batch's model inputs: an image tensor, or ``(image, metadata)``."""
        import torch

        if isinstance(x, list | tuple):
            return tuple(self._to_device(t) for t in x)
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def steps_per_epoch(self, n_train: int, env: DistEnv) -> int:
        steps = math.ceil(math.ceil(n_train / env.world_size) / self.batch_size)
        return min(steps, self.max_steps_per_epoch) if self.max_steps_per_epoch else steps

    # -- evaluation ------------------------------------------------------------------------
    @property
    def tta_views(self) -> tuple[str, ...]:
        """The views :meth:`predict_logits` averages by default (empty: no TTA)."""
        from skinml.modelfile.tta import TTA_VIEWS

        return TTA_VIEWS if self.tta else ()

    def predict_logits(
        self, model, dataset, *, tta: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits and targets for a dataset, in order.

        With TTA the views' *logits* are averaged (before any temperature): that is what
        calibration is fitted on and what the exported graph computes.
        """
        import torch
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        from skinml.data.transforms import tta_views
        from skinml.modelfile.tta import TTA_VIEWS

        views = self.tta_views if tta is None else (TTA_VIEWS if tta else ())
        loader = DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self._cuda,
        )
        model.eval()
        outs, targets = [], []
        with torch.inference_mode():
            for x, y in tqdm(loader, desc="predicting", leave=False, disable=not self.progress):
                image, *rest = model_inputs(self._to_device(x))
                with self._autocast():
                    inputs = tta_views(image, views) if views else [image]
                    # metadata (rest) is not flipped
                    logits = torch.stack([model(v, *rest).float() for v in inputs]).mean(0)
                outs.append(logits.cpu().numpy())
                targets.append(y.numpy())
        return np.concatenate(outs), np.concatenate(targets)

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        model,
        train_dataset,
        val_dataset,
        *,
        optimizer_factory: Callable[..., Any],
        scheduler_factory: Callable[..., Any] | None,
        checkpoint_dir: str | Path,
        seed: int,
        loss_weights: np.ndarray | None = None,
        sample_weights: np.ndarray | None = None,
        resume_from: str | Path | None = None,
        env: DistEnv | None = None,
        validate: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        extra_state: dict[str, Any] | None = None,
        regularizer: Callable[[Any], Any] | None = None,
    ) -> FitResult:
        """Train with early stopping on the validation ``monitor``; returns the best weights.

        Args:
            optimizer_factory: ``params -> optimizer`` (Hydra ``_partial_``).
            scheduler_factory: ``(optimizer, total_steps) -> scheduler`` stepped per batch.
            validate: ``(logits, targets) -> metrics`` with keys like ``val_balanced_accuracy``.
            on_epoch_end: ``(epoch, metrics)`` after each epoch, ``epoch`` counted from 1.
            resume_from: a checkpoint written by this method.
            extra_state: stored in every checkpoint (e.g. the MLflow run id).
            regularizer: ``model -> scalar tensor`` added to every batch's loss (e.g.
                FedProx's proximal term, which keeps a site's local epochs near the
                global model it started from).
        """
        import torch
        from tqdm.auto import tqdm

        from skinml.data.torch_dataset import make_loader
        from skinml.training.finetune import apply_lr_scale, parameter_groups

        env = env or DistEnv()
        if self.threads:
            torch.set_num_threads(self.threads)
        checkpoint_dir = Path(checkpoint_dir)
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        net = model
        if env.is_distributed:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(
                model, device_ids=[env.local_rank] if self._cuda else None
            )
        optimizer = optimizer_factory(
            params=parameter_groups(
                model,
                backbone_lr_scale=self.backbone_lr_scale,
                no_decay_1d=self.no_weight_decay_1d,
            )
        )
        apply_lr_scale(optimizer)
        steps = self.steps_per_epoch(len(train_dataset), env)
        scheduler = (
            scheduler_factory(optimizer=optimizer, total_steps=steps * self.max_epochs)
            if scheduler_factory is not None
            else None
        )
        _check_group_rates(optimizer)
        ema = None
        if self.ema_decay:
            from timm.utils import ModelEmaV3

            ema = ModelEmaV3(model, decay=self.ema_decay, use_warmup=True)
        evaluated = ema.module if ema is not None else model
        use_scaler = self._cuda and self.amp and not torch.cuda.is_bf16_supported()
        scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        weight = (
            None if loss_weights is None else torch.as_tensor(loss_weights, dtype=torch.float32)
        )
        loss_fn = torch.nn.CrossEntropyLoss(
            weight=weight.to(self.device) if weight is not None else None
        )
        sampler = EpochSampler(
            len(train_dataset),
            weights=sample_weights,
            seed=seed,
            rank=env.rank,
            world_size=env.world_size,
        )

        start, history, best = 0, [], {"score": -math.inf, "epoch": 0, "stale": 0}
        best_state = {k: v.detach().cpu().clone() for k, v in evaluated.state_dict().items()}
        if resume_from is not None:
            ckpt = _counted_from_one(load_checkpoint(resume_from))
            model.load_state_dict(ckpt["model"])
            if ema is not None:
                ema.module.load_state_dict(ckpt["ema"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt.get("scheduler") is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            start, history, best = ckpt["epoch"], ckpt["history"], ckpt["best"]
            best_path = checkpoint_dir / BEST
            if best_path.exists():
                best_state = load_checkpoint(best_path)["model"]
        stopped_early = False
        for index in range(start, self.max_epochs):  # 0-based index: seeds only
            epoch = index + 1
            if best["stale"] >= self.early_stopping_patience:
                stopped_early = True
                break
            t0 = time.perf_counter()
            es = epoch_seed(seed, index)
            torch.manual_seed(es + env.rank)
            sampler.set_epoch(index)
            if hasattr(train_dataset, "reseed"):
                train_dataset.reseed(es + 7 * env.rank)
            loader = make_loader(
                train_dataset,
                self.batch_size,
                sampler=sampler,
                num_workers=self.num_workers,
                seed=es + env.rank,
                pin_memory=self._cuda,
            )
            net.train()
            total_loss, seen = 0.0, 0
            bar = tqdm(
                loader,
                total=steps,
                desc=f"epoch {epoch}/{self.max_epochs}",
                leave=False,
                disable=not (self.progress and env.is_main),
            )
            for step, (x, y) in enumerate(bar):
                if step >= steps:
                    break
                x, y = model_inputs(self._to_device(x)), y.to(self.device)
                optimizer.zero_grad(set_to_none=True)
                with self._autocast():
                    loss = loss_fn(net(*x).float(), y)
                    if regularizer is not None:
                        loss = loss + regularizer(model)
                scaler.scale(loss).backward()
                if self.grad_clip_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip_norm)
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
                if ema is not None:
                    ema.update(model, step=index * steps + step + 1)
                total_loss += float(loss.item()) * len(y)
                seen += len(y)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}")
            train_time = time.perf_counter() - t0
            metrics = {
                "train_loss": all_reduce_mean(total_loss / max(seen, 1), env),
                "train_images_per_s": seen * env.world_size / max(train_time, 1e-9),
                "lr": max(float(g["lr"]) for g in optimizer.param_groups),  # the head's
            }
            if env.is_main:
                logits, targets = self.predict_logits(evaluated, val_dataset, tta=False)
                metrics["val_loss"] = float(
                    torch.nn.functional.cross_entropy(
                        torch.from_numpy(logits), torch.from_numpy(targets)
                    ).item()
                )
                if validate is not None:
                    metrics.update(validate(logits, targets))
                metrics["epoch_time_s"] = time.perf_counter() - t0
            metrics = broadcast_object(metrics, env)
            score = float(metrics.get(self.monitor, -metrics.get("val_loss", math.inf)))
            if score > best["score"]:
                best = {"score": score, "epoch": epoch, "stale": 0}
                best_state = {
                    k: v.detach().cpu().clone() for k, v in evaluated.state_dict().items()
                }
                if env.is_main:
                    save_checkpoint({"model": best_state, "epoch": epoch}, checkpoint_dir / BEST)
            else:
                best = {**best, "stale": best["stale"] + 1}
            history.append({"epoch": epoch, **metrics})
            if env.is_main:
                log.info(_epoch_summary(epoch, self.max_epochs, metrics, self.monitor, best))
                state = {
                    "model": model.state_dict(),
                    "ema": ema.module.state_dict() if ema is not None else None,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "epoch_numbering": EPOCH_NUMBERING,
                    "history": history,
                    "best": best,
                    "extra": extra_state or {},
                }
                save_checkpoint(state, checkpoint_dir / LAST)
                if self.keep_every_epoch:
                    save_checkpoint(state, checkpoint_dir / f"epoch_{epoch:03d}.pt")
                if on_epoch_end is not None:
                    on_epoch_end(epoch, metrics)
        else:
            stopped_early = False
        if best["stale"] >= self.early_stopping_patience and len(history) < self.max_epochs:
            stopped_early = True
        return FitResult(
            best_epoch=best["epoch"],
            best_score=best["score"],
            best_state_dict=best_state,
            history=history,
            stopped_early=stopped_early,
        )


def _counted_from_one(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint with epochs counted from 1 (older checkpoints, unmarked, counted from 0)."""
    if ckpt.get("epoch_numbering") == EPOCH_NUMBERING:
        return ckpt
    return {
        **ckpt,
        "epoch": ckpt["epoch"] + 1,
        "history": [{**h, "epoch": h["epoch"] + 1} for h in ckpt["history"]],
        "best": {**ckpt["best"], "epoch": ckpt["best"]["epoch"] + 1},
        "epoch_numbering": EPOCH_NUMBERING,
    }


def _check_group_rates(optimizer) -> None:
    """Refuse a scheduler that flattened the per-group rates (``OneCycleLR`` with one max_lr)."""
    from skinml.errors import ConfigError

    rates = {g["lr"] / g.get("lr_scale", 1.0) for g in optimizer.param_groups if g["lr"] > 0}
    if len(rates) > 1 and max(rates) / min(rates) > 1 + 1e-6:
        raise ConfigError(
            "the scheduler gives every parameter group the same learning rate, which undoes "
            "trainer.backbone_lr_scale",
            column="scheduler",
            fix="use scheduler=warmup_cosine (or scheduler=none) with backbone_lr_scale != 1, "
            "or set trainer.backbone_lr_scale=1.0",
        )
