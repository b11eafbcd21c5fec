"""Image statistics and quality flags with numpy alone (used by the predictor and by QC).

Dermoscopy models fail quietly on blurred, over/under-exposed or tiny images;
flagging them lets a clinician retake the photo instead of trusting a guess.
The same statistics per hospital and device reveal acquisition shift in QC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

#: Thresholds set from data (experiments/quality_thresholds): midway between a 1,500-image
#: HAM10000 training sample (its 0.5th percentile) and strongly degraded copies of it (their
#: 99.5th: Gaussian blur of 1.5 % of the longer side, exposure x0.25 and x3), geometric
#: for sharpness. Checked on the DermaMNIST test split and the 113 CC0 photos: 0.24 % of
#: originals flagged, 99.97 % of degraded copies. All overridable by callers.
BLUR_VARIANCE_MIN = 6.0  # variance of the Laplacian on the working copy (greyscale)
DARK_MEAN_MAX = 80.0  # mean luminance (0-255) below this: under-exposed
BRIGHT_MEAN_MIN = 214.0  # mean luminance above this: over-exposed
CLIPPED_FRACTION_MAX = 0.25  # fraction of pixels at 0-2 or 253-255
MIN_SIDE = 64  # shorter side in pixels of the original image (from its header)


@dataclass(frozen=True)
class QualityMeasures:
    """What the quality flags need: size, exposure, clipping and sharpness (0-255 scales)."""

    width: int
    height: int
    brightness: float
    contrast: float
    sharpness: float
    clipped_fraction: float


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
#: Longer side of the copy on which sharpness and exposure are measured.
MEASURE_SIDE = 256


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels: low means blurred.

    The predictor measures every image, so this works on the flattened image,
    where each neighbour is a contiguous shifted slice (several times faster
    than 2-D slicing); the wrapped-around border columns are dropped before the
    statistics. Sums are exact integers, and there is no BLAS call: OpenBLAS's threads
    would fight onnxruntime's for the cores when this runs in decoding threads.
    """
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    g = np.ascontiguousarray(grey, dtype=np.int16).ravel()  # |Laplacian| <= 1020 fits
    lo, hi = w, (h - 1) * w  # rows 1 .. h-2, all columns
    lap = g[lo - w : hi - w] + g[lo + w : hi + w]
    lap += g[lo - 1 : hi - 1]
    lap += g[lo + 1 : hi + 1]
    lap -= g[lo:hi] << 2
    inner = lap.reshape(h - 2, w)[:, 1:-1].astype(np.int32)  # squares <= 1020**2 fit
    n = inner.size
    total = int(inner.sum(dtype=np.int64))
    inner *= inner
    squares = int(inner.sum(dtype=np.int64))
    return (squares * n - total * total) / (n * n)


def _hist_mean_std(hist: list[int] | np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation of 0-255 values from their histogram."""
    h = np.asarray(hist, dtype=np.float64)
    n = max(h.sum(), 1.0)
    mean = float((h * _LEVELS).sum() / n)  # elementwise, not `@`: no BLAS threads
    var = float((h * (_LEVELS - mean) ** 2).sum() / n)
    return mean, var**0.5


def _working_copy(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode`` at most MEASURE_SIDE px on its longer side (bilinear thumbnail).

    Measuring on a fixed working resolution makes sharpness independent of the camera's
    resolution and of a reduced-scale decode; images already small enough are used as
    they are (no upscaling). The greyscale copy is converted first and then reduced: a
    third of the resampling work of an RGB copy, on every image the predictor scores.
    """
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    out = rgb if mode == "RGB" else rgb.convert(mode)
    if max(out.size) <= MEASURE_SIDE:
        return out
    out = out.copy() if out is img else out
    out.thumbnail((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BILINEAR)
    return out


def _grey_measures(grey: Image.Image, size: tuple[int, int]) -> QualityMeasures:
    hist = grey.histogram()
    brightness, contrast = _hist_mean_std(hist)
    clipped = (sum(hist[:3]) + sum(hist[253:])) / max(1, grey.width * grey.height)
    return QualityMeasures(
        width=size[0],
        height=size[1],
        brightness=brightness,
        contrast=contrast,
        sharpness=laplacian_variance(np.asarray(grey)),
        clipped_fraction=float(clipped),
    )


def quality_measures(
    img: Image.Image, *, original_size: tuple[int, int] | None = None
) -> QualityMeasures:
    """Size, exposure, clipping and sharpness of an image: all that :func:`quality_flags` reads.

    The predictor calls this for every input, so it skips the colour statistics
    of :func:`image_stats` (the HSV conversion alone costs more than decoding a
    200x150 JPEG); the shared values are identical to :func:`image_stats`'.
    ``original_size``: the size the file declared, when ``img`` was decoded at reduced scale.
    """
    return _grey_measures(_working_copy(img, "L"), original_size or img.size)


def image_stats(img: Image.Image, *, original_size: tuple[int, int] | None = None) -> ImageStats:
    """Compute brightness, contrast, colour, saturation, sharpness and clipping of an RGB image.

    Everything but the size is measured on the working copy (longer side at most
    :data:`MEASURE_SIDE` px) so that the score does not depend on the camera's
    resolution; width and height are ``original_size`` when given (a reduced decode).
    Means and deviations come from PIL's C histograms rather than float arrays, which is
    several times faster.
    """
    q = _grey_measures(_working_copy(img, "L"), original_size or img.size)
    small = _working_copy(img, "RGB")
    rgb_hist = small.histogram()
    red, green, blue = (_hist_mean_std(rgb_hist[k * 256 : (k + 1) * 256])[0] for k in range(3))
    saturation = _hist_mean_std(small.convert("HSV").histogram()[256:512])[0]
    return ImageStats(
        width=q.width,
        height=q.height,
        brightness=q.brightness,
        contrast=q.contrast,
        red=red,
        green=green,
        blue=blue,
        saturation=saturation,
        sharpness=q.sharpness,
        clipped_fraction=q.clipped_fraction,
    )


def quality_flags(
    stats: QualityMeasures | ImageStats,
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
