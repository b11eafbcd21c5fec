"""Class-activation heatmaps drawn with numpy and Pillow alone.

The exported graph outputs a CAM per class (``W_k · F + b_k`` at every
feature-map position; its spatial mean is the class logit), so no autograd is
needed in the clinic. Heatmaps are overlaid on the region of the original image
that the network actually saw (the centre crop, or the whole image when it was
squashed), and saved without any metadata.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from skinml.imaging.read import save_clean
from skinml.modelfile.metadata import Preprocessing

#: Longest side of written heatmap images, in pixels.
HEATMAP_MAX_SIDE = 512


def view_box(size: tuple[int, int], prep: Preprocessing) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the original image that the model input covers.

    Mirrors :func:`skinml.imaging.preprocess.resize_for_model` in original pixel coordinates.
    """
    w0, h0 = size
    height, width = prep.input_size
    if prep.resize != "resize_shorter_center_crop":
        return (0, 0, w0, h0)
    scale_to = round(max(height, width) / prep.crop_pct)
    factor = scale_to / min(w0, h0)
    new_w, new_h = max(width, round(w0 * factor)), max(height, round(h0 * factor))
    left, top = (new_w - width) // 2, (new_h - height) // 2
    sx, sy = w0 / new_w, h0 / new_h
    return (
        round(left * sx),
        round(top * sy),
        round((left + width) * sx),
        round((top + height) * sy),
    )


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    """Keep positive evidence (ReLU) and scale to [0, 1]; a flat map becomes all zeros."""
    c = np.maximum(np.asarray(cam, dtype=np.float32), 0.0)
    top = float(c.max())
    return c / top if top > 0 else np.zeros_like(c)


def colourise(values: np.ndarray) -> np.ndarray:
    """Map [0, 1] values to an RGB uint8 'jet'-like colour scale (blue -> red)."""
    v = np.clip(values, 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4.0 * v - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * v - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * v - 1.0), 0.0, 1.0)
    return (np.stack([r, g, b], axis=-1) * 255.0 + 0.5).astype(np.uint8)


def overlay(image: Image.Image, cam: np.ndarray, prep: Preprocessing, alpha: float = 0.45):
    """Blend the normalised CAM onto the part of ``image`` the model saw."""
    region = image.convert("RGB").crop(view_box(image.size, prep))
    region.thumbnail((HEATMAP_MAX_SIDE, HEATMAP_MAX_SIDE), Image.Resampling.BILINEAR)
    heat = Image.fromarray(normalise_cam(cam), mode="F").resize(
        region.size, Image.Resampling.BILINEAR
    )
    colours = colourise(np.asarray(heat))
    base = np.asarray(region, dtype=np.float32)
    mixed = (1.0 - alpha) * base + alpha * colours.astype(np.float32)
    return Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def write_heatmap(
    image: Image.Image, cam: np.ndarray, prep: Preprocessing, path: str | PathLike[str]
) -> Path:
    """Write the overlay as a PNG with no EXIF/GPS (pixels only)."""
    return save_clean(overlay(image, cam, prep), path, fmt="PNG")
