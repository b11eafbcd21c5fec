"""Fine-tuning helpers for pretrained backbones: per-group learning rates and warm-up.

A pretrained backbone already holds useful features; updating it at the head's
learning rate destroys them in the first steps (Kornblith et al., CVPR 2019;
Howard & Ruder, ACL 2018). So the backbone gets a fraction of the head's rate,
normalisation weights and biases get no weight decay, and the rate warms up
linearly before a cosine decay. Pure functions over a model and an optimizer.
"""

from __future__ import annotations

import math
from typing import Any


def parameter_groups(
    model: Any, *, backbone_lr_scale: float = 1.0, no_decay_1d: bool = True
) -> list[dict[str, Any]]:
    """Split a timm model's parameters into head/backbone x decay/no-decay groups.

    Each group carries ``lr_scale`` (applied by :func:`apply_lr_scale` once the
    optimizer exists, so the optimizer config keeps one ``lr``: the head's).

    Args:
        model: a timm classifier (``get_classifier()`` names the head), or a metadata-fusion
            model (``head_parameters()``: the metadata MLP and the classifier).
        backbone_lr_scale: learning rate of every non-head parameter relative to ``lr``.
        no_decay_1d: no weight decay for biases and normalisation weights (1-D tensors).
    """
    if not backbone_lr_scale > 0:
        raise ValueError(f"backbone_lr_scale must be positive, got {backbone_lr_scale}")
    if hasattr(model, "head_parameters"):  # metadata fusion: the metadata MLP is new too
        head_ids = {id(p) for p in model.head_parameters()}
    else:
        head = model.get_classifier() if hasattr(model, "get_classifier") else None
        head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        key = (id(p) in head_ids, no_decay_1d and p.ndim <= 1)
        groups.setdefault(key, []).append(p)
    out = []
    for (is_head, no_decay), params in sorted(groups.items()):
        group: dict[str, Any] = {
            "params": params,
            "lr_scale": 1.0 if is_head or not head_ids else float(backbone_lr_scale),
            "name": ("head" if is_head else "backbone") + ("_no_decay" if no_decay else ""),
        }
        if no_decay:
            group["weight_decay"] = 0.0
        out.append(group)
    return out


def apply_lr_scale(optimizer: Any) -> None:
    """Multiply each group's ``lr`` by its ``lr_scale`` (before any scheduler is built)."""
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.get("lr_scale", 1.0)


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, final_lr_ratio: float
) -> float:
    """Learning-rate multiplier: linear warm-up from 1/warmup to 1, then cosine to the floor."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final_lr_ratio + (1 - final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: Any,
    total_steps: int,
    *,
    warmup_fraction: float = 0.1,
    final_lr_ratio: float = 0.01,
):
    """A per-step ``LambdaLR``: warm-up over ``warmup_fraction`` of the steps, then cosine.

    Unlike ``OneCycleLR`` with a scalar ``max_lr``, it scales every group's own rate,
    so the backbone keeps its lower learning rate throughout.
    """
    from torch.optim.lr_scheduler import LambdaLR

    warmup = round(warmup_fraction * total_steps)
    return LambdaLR(
        optimizer,
        lambda step: warmup_cosine_factor(step, total_steps, warmup, final_lr_ratio),
    )
