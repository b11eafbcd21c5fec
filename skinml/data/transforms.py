"""Augmentation pipelines (albumentations) around the model's fixed preprocessing.

Augmentations are configured in ``configs/augmentation/*.yaml`` and operate on
uint8 images already resized to the model input; normalisation is then done by
:func:`skinml.imaging.preprocess.normalize`, the same function the predictor uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skinml.modelfile.tta import TTA_VIEWS, flip_axes


def build_augmentation(transforms: Sequence[Any] | None, *, seed: int = 0):
    """Compose instantiated albumentations transforms (None or empty -> identity).

    Args:
        transforms: albumentations transform objects (from Hydra ``_target_``s).
        seed: initial seed; the trainer reseeds per epoch and worker.
    """
    import albumentations as A

    return A.Compose(list(transforms or []), seed=seed)


def tta_views(batch, views: Sequence[str] = TTA_VIEWS) -> list[Any]:
    """Test-time augmentation views of an NCHW batch (default: identity, h-flip, v-flip, both).

    Dermoscopy has no canonical orientation, so flips are label-preserving. The view
    names are those the model file records (:mod:`skinml.modelfile.tta`), so the exported
    graph and the predictor flip exactly as training did.
    """
    return [batch.flip(axes) if axes else batch for axes in map(flip_axes, views)]
