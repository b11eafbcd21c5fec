"""Normalisation gives exactly the float32 values of its arithmetic definition."""

from __future__ import annotations

import numpy as np
import pytest

from skinml.imaging.preprocess import normalize
from skinml.modelfile.metadata import Preprocessing

PREPS = [
    Preprocessing(input_size=(8, 8), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    Preprocessing(input_size=(8, 8), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    Preprocessing(input_size=(8, 8), mean=(10.0, 20.0, 30.0), std=(1.0, 2.0, 3.0), scale=1.0),
]


def _definition(arr: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """(x * scale - mean) / std as float32 multiply-then-subtract, channels first."""
    std = np.asarray(prep.std, dtype=np.float64)
    gain = (prep.scale / std).astype(np.float32)
    offset = (np.asarray(prep.mean, dtype=np.float64) / std).astype(np.float32)
    x = arr.astype(np.float32) * gain - offset
    return x.transpose(2, 0, 1)


@pytest.mark.parametrize("prep", PREPS)
def test_uint8_lookup_equals_the_arithmetic_bit_for_bit(prep):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    arr[0, :3] = [[0, 0, 0], [255, 255, 255], [1, 128, 254]]
    out = normalize(arr, prep)
    assert out.dtype == np.float32 and out.shape == (3, 13, 17) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, _definition(arr, prep))
    np.testing.assert_array_equal(normalize(arr[::2, ::3], prep), _definition(arr[::2, ::3], prep))


@pytest.mark.parametrize("prep", PREPS)
def test_float_input_takes_the_arithmetic_path(prep):
    arr = np.random.default_rng(1).uniform(0, 255, (5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(normalize(arr, prep), _definition(arr, prep))
