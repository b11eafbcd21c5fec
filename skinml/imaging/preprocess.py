"""Model-input preprocessing with Pillow and numpy: the single definition used everywhere.

Training caches images through :func:`resize_for_model`, and the torch-free
predictor and export verification use the same function, so what the model
sees in the clinic is what it saw in training (no train/serve skew from two
different resize implementations).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from skinml.modelfile.metadata import Preprocessing

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize_for_model(img: Image.Image, prep: Preprocessing) -> Image.Image:
    """Resize (and crop) an RGB image to the model's input size per its resize policy.

    ``resize``: squash to (height, width) without keeping the aspect ratio.
    ``resize_shorter_center_crop``: scale the shorter side to ``size / crop_pct``
    and take the central (height, width) crop.
    """
    height, width = prep.input_size
    resample = _RESAMPLE.get(prep.interpolation, Image.Resampling.BILINEAR)
    if prep.resize == "resize":
        return img.resize((width, height), resample)
    if prep.resize == "resize_shorter_center_crop":
        scale_to = round(max(height, width) / prep.crop_pct)
        w0, h0 = img.size
        factor = scale_to / min(w0, h0)
        new_w, new_h = max(width, round(w0 * factor)), max(height, round(h0 * factor))
        resized = img.resize((new_w, new_h), resample)
        left, top = (new_w - width) // 2, (new_h - height) // 2
        return resized.crop((left, top, left + width, top + height))
    raise ValueError(
        f"unknown resize policy {prep.resize!r}; expected 'resize' or 'resize_shorter_center_crop'"
    )


def normalize(arr: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """uint8 H×W×3 -> float32 3×H×W, scaled and standardised with the model's mean/std.

    ``(x * scale - mean) / std`` is applied as one multiply and one subtract per
    pixel, in place, because this runs for every image the predictor scores.
    """
    std = np.asarray(prep.std, dtype=np.float64)
    gain = (prep.scale / std).astype(np.float32)
    offset = (np.asarray(prep.mean, dtype=np.float64) / std).astype(np.float32)
    x = arr.astype(np.float32)
    x *= gain
    x -= offset
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess(img: Image.Image, prep: Preprocessing) -> np.ndarray:
    """An RGB image -> the float32 CHW array the network takes (no batch axis)."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return normalize(np.asarray(resize_for_model(rgb, prep)), prep)
