"""Model-input preprocessing with Pillow and numpy: the single definition used everywhere.

Training, evaluation, export verification, QC, teaching-set builds and the torch-free
predictor all decode through :func:`decode_for_model` and resize through
:func:`resize_for_model`, so what the model sees in the clinic is what it saw in
training (no train/serve skew from two decoders or two resize implementations).
"""

from __future__ import annotations

from functools import lru_cache
from os import PathLike

import numpy as np
from PIL import Image

from skinml.imaging.read import DecodedImage, decode_image
from skinml.modelfile.metadata import Preprocessing

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def fast_decode_min_side(input_size: tuple[int, int]) -> int:
    """The decoded shorter side a model of this input size needs: twice its input side.

    Twice the input side leaves the resize a real downscale (drafting straight to the
    input size changed a top-1 answer of a 28 px model on the 113 CC0 photos;
    ``experiments/inference_benchmark/decode_path.py`` measures this choice). The
    decode also keeps the longer side >= 256 px for the quality measures.
    """
    return 2 * max(input_size)


def decode_for_model(path: str | PathLike[str], prep: Preprocessing) -> DecodedImage:
    """Decode an image file as the model's preprocessing says (reduced-scale JPEG or exact).

    Raises:
        ImageReadError: as :func:`skinml.imaging.read.decode_image`.
    """
    return decode_image(path, min_decoded_side=prep.decode_min_side)


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


@lru_cache(maxsize=16)
def _constants(
    scale: float, mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[np.float32, np.ndarray, np.ndarray, np.ndarray]:
    """float32 scale, mean and std (C×1×1), and the C×256 table of the definition's values."""
    scale32 = np.float32(scale)
    mean32 = np.asarray(mean, dtype=np.float32)[:, None, None]
    std32 = np.asarray(std, dtype=np.float32)[:, None, None]
    values = np.arange(256, dtype=np.float32)[None, None, :]
    table = ((values * scale32 - mean32) / std32)[:, 0, :]
    return scale32, mean32, std32, np.ascontiguousarray(table)


def normalize(arr: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """H×W×3 pixels -> float32 3×H×W: ``(x * scale - mean) / std`` with the model's mean/std.

    The definition is evaluated in float32, operation by operation, as torchvision-style
    training pipelines do. For uint8 input (every decoded image) the 256 possible results
    per channel are computed once with that same arithmetic and looked up straight into the
    CHW layout: bit-identical values, about three times faster, and the predictor runs this
    for every image it scores.
    """
    scale, mean, std, table = _constants(float(prep.scale), tuple(prep.mean), tuple(prep.std))
    if arr.dtype == np.uint8:
        out = np.empty((arr.shape[2], *arr.shape[:2]), dtype=np.float32)
        for c in range(arr.shape[2]):
            np.take(table[c], arr[..., c], out=out[c])
        return out
    x = np.ascontiguousarray(arr.astype(np.float32).transpose(2, 0, 1))
    x *= scale
    x -= mean
    x /= std
    return x


def model_input(path: str | PathLike[str], prep: Preprocessing) -> np.ndarray:
    """An image file -> the uint8 H×W×3 pixels the network takes (decoded and resized)."""
    return np.asarray(resize_for_model(decode_for_model(path, prep).image, prep))


def preprocess(img: Image.Image, prep: Preprocessing) -> np.ndarray:
    """An RGB image -> the float32 CHW array the network takes (no batch axis)."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return normalize(np.asarray(resize_for_model(rgb, prep)), prep)
