"""Normalisation gives exactly the float32 values of its definition, ``(x * scale - mean) / std``.

The reference is torchvision's ``normalize``, not a re-statement of skinml's own arithmetic:
an earlier table-lookup version computed ``x * (scale / std) - mean / std`` and differed
from the definition on 643 of the 768 (channel, value) inputs while its test, written
against that same rearrangement, passed.
"""

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
    """The reference: torchvision's ``normalize`` of ``x * scale``, in float32, channels first."""
    import torch
    from torchvision.transforms.functional import normalize as tv_normalize

    x = torch.from_numpy(np.ascontiguousarray(arr.astype(np.float32).transpose(2, 0, 1)))
    return tv_normalize(x * np.float32(prep.scale), list(prep.mean), list(prep.std)).numpy()


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


def test_every_uint8_value_of_every_channel_matches_the_reference():
    prep = PREPS[0]
    every = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # 1x256x3
    np.testing.assert_array_equal(normalize(every, prep), _definition(every, prep))
