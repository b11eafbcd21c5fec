"""Image statistics equal their array definitions, and the quality flags fire on bad photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from skinml.imaging.quality import (
    image_stats,
    laplacian_variance,
    quality_flags,
    quality_measures,
)


def _reference_stats(img: Image.Image) -> dict[str, float]:
    """The statistics computed directly on float arrays (the definition): colour on the RGB
    working copy, exposure and sharpness on the greyscale image reduced to the working size."""
    small = img.convert("RGB").copy()
    small.thumbnail((256, 256), Image.Resampling.BILINEAR)
    grey_small = img.convert("RGB").convert("L")
    grey_small.thumbnail((256, 256), Image.Resampling.BILINEAR)
    arr = np.asarray(small, dtype=np.float64)
    grey = np.asarray(grey_small, dtype=np.float64)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    lap = (
        -4.0 * grey[1:-1, 1:-1]
        + grey[:-2, 1:-1]
        + grey[2:, 1:-1]
        + grey[1:-1, :-2]
        + grey[1:-1, 2:]
    )
    return {
        "brightness": grey.mean(),
        "contrast": grey.std(),
        "red": arr[..., 0].mean(),
        "green": arr[..., 1].mean(),
        "blue": arr[..., 2].mean(),
        "saturation": hsv[..., 1].mean(),
        "sharpness": lap.var(),
        "clipped_fraction": np.mean((grey <= 2) | (grey >= 253)),
    }


@pytest.mark.parametrize("size", [(200, 150), (640, 480), (31, 17)])
def test_histogram_statistics_equal_the_array_definitions(size):
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
    got = image_stats(img).as_dict()
    assert (got["width"], got["height"]) == size
    for key, want in _reference_stats(img).items():
        assert got[key] == pytest.approx(want, rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("size", [(200, 150), (640, 480)])
def test_the_predictors_measures_equal_the_full_statistics(size, mode):
    """The predictor's cheaper path must flag exactly what QC's full statistics would."""
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    full = image_stats(img).as_dict()
    measures = quality_measures(img)
    for key, value in vars(measures).items():
        assert value == full[key], key
    assert quality_flags(measures) == quality_flags(image_stats(img))


def _photo(size=(200, 150), level=128) -> Image.Image:
    rng = np.random.default_rng(0)
    base = np.clip(level + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(base)


def test_a_sharp_well_exposed_photo_has_no_flags():
    assert quality_flags(image_stats(_photo())) == []


def test_flags_fire_on_blur_exposure_and_size():
    blurred = _photo().filter(ImageFilter.GaussianBlur(6))
    assert "blurry" in quality_flags(image_stats(blurred))
    assert "underexposed" in quality_flags(image_stats(_photo(level=10)))
    assert "overexposed" in quality_flags(image_stats(_photo(level=250)))
    half_white = np.asarray(_photo()).copy()
    half_white[:, :100] = 255  # a blown-out flash reflection over half the image
    assert "clipped" in quality_flags(image_stats(Image.fromarray(half_white)))
    assert "too_small" in quality_flags(image_stats(_photo(size=(40, 300))))


@pytest.mark.parametrize("shape", [(3, 3), (3, 40), (40, 3), (2, 9), (9, 2), (1, 1), (37, 91)])
def test_laplacian_variance_matches_the_2d_definition_on_any_shape(shape):
    """The flattened fast path must drop the wrapped-around border columns exactly."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    grey = rng.integers(0, 256, shape, dtype=np.uint8)
    g = grey.astype(np.float64)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    want = lap.var() if lap.size else 0.0
    assert laplacian_variance(grey) == pytest.approx(want, rel=1e-12, abs=1e-12)
    strided = np.asfortranarray(grey)  # a non-C-ordered input gives the same value
    assert laplacian_variance(strided) == pytest.approx(want, rel=1e-12, abs=1e-12)
