"""Image statistics and quality flags with numpy alone (used by the predictor and by QC).

Dermoscopy models fail quietly on blurred, over/under-exposed or tiny images;
flagging them lets a clinician retake the photo instead of trusting a guess.
The same statistics per hospital and device reveal acquisition shift in QC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

#: Defaults chosen on dermoscopy/clinical photos; all overridable by callers.
BLUR_VARIANCE_MIN = 20.0  # variance of the Laplacian on the 256-px greyscale image
DARK_MEAN_MAX = 40.0  # mean luminance (0-255) below this: under-exposed
BRIGHT_MEAN_MIN = 225.0  # mean luminance above this: over-exposed
CLIPPED_FRACTION_MAX = 0.25  # fraction of pixels at 0 or 255
MIN_SIDE = 64  # shorter side in pixels


@dataclass(frozen=True)
class ImageStats:
    """Per-image statistics (all on 0-255 scales; sharpness after resizing to 256 px)."""

    width: int
    height: int
    brightness: float
    contrast: float
    red: float
    green: float
    blue: float
    saturation: float
    sharpness: float
    clipped_fraction: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low values mean a blurred image."""
    g = grey.astype(np.float64)
    lap = -4.0 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var()) if lap.size else 0.0


def image_stats(img: Image.Image) -> ImageStats:
    """Compute brightness, contrast, colour, saturation, sharpness and clipping of an RGB image.

    Sharpness is measured on a copy whose longer side is 256 px so that the
    score does not depend on the camera's resolution.
    """
    rgb = img.convert("RGB")
    width, height = rgb.size
    small = rgb.copy()
    small.thumbnail((256, 256), Image.Resampling.BILINEAR)
    arr = np.asarray(small, dtype=np.float64)
    grey = np.asarray(small.convert("L"), dtype=np.float64)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    clipped = float(np.mean((grey <= 2) | (grey >= 253)))
    return ImageStats(
        width=width,
        height=height,
        brightness=float(grey.mean()),
        contrast=float(grey.std()),
        red=float(arr[..., 0].mean()),
        green=float(arr[..., 1].mean()),
        blue=float(arr[..., 2].mean()),
        saturation=float(hsv[..., 1].mean()),
        sharpness=laplacian_variance(grey),
        clipped_fraction=clipped,
    )


def quality_flags(
    stats: ImageStats,
    *,
    blur_min: float = BLUR_VARIANCE_MIN,
    dark_max: float = DARK_MEAN_MAX,
    bright_min: float = BRIGHT_MEAN_MIN,
    clipped_max: float = CLIPPED_FRACTION_MAX,
    min_side: int = MIN_SIDE,
) -> list[str]:
    """Names of the quality problems found: ``blurry``, ``underexposed``, ``overexposed``,
    ``clipped``, ``too_small``. An empty list means no problem was detected."""
    flags = []
    if stats.sharpness < blur_min:
        flags.append("blurry")
    if stats.brightness < dark_max:
        flags.append("underexposed")
    if stats.brightness > bright_min:
        flags.append("overexposed")
    if stats.clipped_fraction > clipped_max:
        flags.append("clipped")
    if min(stats.width, stats.height) < min_side:
        flags.append("too_small")
    return flags
