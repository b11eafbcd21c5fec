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


_LEVELS = np.arange(256, dtype=np.float64)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low values mean a blurred image."""
    g = grey.astype(np.int16)  # exact: |Laplacian| <= 4 * 255 fits in int16
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var(dtype=np.float64)) if lap.size else 0.0


def _hist_mean_std(hist: list[int] | np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation of 0-255 values from their histogram."""
    h = np.asarray(hist, dtype=np.float64)
    n = max(h.sum(), 1.0)
    mean = float(h @ _LEVELS / n)
    var = float(h @ (_LEVELS - mean) ** 2 / n)
    return mean, var**0.5


def image_stats(img: Image.Image) -> ImageStats:
    """Compute brightness, contrast, colour, saturation, sharpness and clipping of an RGB image.

    Sharpness is measured on a copy whose longer side is 256 px so that the
    score does not depend on the camera's resolution. Means and deviations come
    from PIL's C histograms rather than float arrays: the predictor computes these
    statistics for every input, so they must cost less than decoding the image.
    """
    rgb = img.convert("RGB")
    width, height = rgb.size
    small = rgb.copy()
    small.thumbnail((256, 256), Image.Resampling.BILINEAR)
    grey = small.convert("L")
    grey_hist = grey.histogram()
    brightness, contrast = _hist_mean_std(grey_hist)
    rgb_hist = small.histogram()
    red, green, blue = (_hist_mean_std(rgb_hist[k * 256 : (k + 1) * 256])[0] for k in range(3))
    saturation = _hist_mean_std(small.convert("HSV").histogram()[256:512])[0]
    clipped = (sum(grey_hist[:3]) + sum(grey_hist[253:])) / max(1, small.width * small.height)
    return ImageStats(
        width=width,
        height=height,
        brightness=brightness,
        contrast=contrast,
        red=red,
        green=green,
        blue=blue,
        saturation=saturation,
        sharpness=laplacian_variance(np.asarray(grey)),
        clipped_fraction=float(clipped),
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
