"""Augmentation pipelines (albumentations) around the model's fixed preprocessing.

Augmentations are configured in ``configs/augmentation/*.yaml`` and operate on
uint8 images already resized to the model input; normalisation is then done by
:func:`skinml.imaging.preprocess.normalize`, the same function the predictor uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def build_augmentation(transforms: Sequence[Any] | None, *, seed: int = 0):
    """Compose instantiated albumentations transforms (None or empty -> identity).

    Args:
        transforms: albumentations transform objects (from Hydra ``_target_``s).
        seed: initial seed; the trainer reseeds per epoch and worker.
    """
    import albumentations as A

    return A.Compose(list(transforms or []), seed=seed)


def tta_views(batch):
    """Test-time augmentation views of an NCHW batch: identity, h-flip, v-flip, both.

    Dermoscopy has no canonical orientation, so flips are label-preserving.
    """
    return [batch, batch.flip(-1), batch.flip(-2), batch.flip(-1).flip(-2)]
