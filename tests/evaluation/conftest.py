"""Synthetic predictions with known calibration, for the evaluation tests.

All data here are simulated: probabilities are drawn first and labels are
drawn from them, so the true calibration (and the true temperature) is known.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MALIGNANT = ("akiec", "bcc", "mel")


def _calibrated(rng: np.random.Generator, n: int, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the predicted probabilities: perfectly calibrated by construction."""
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = softmax(logits, axis=1)
    y = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    return np.minimum(y, k - 1), probs


def _overconfident(
    rng: np.random.Generator, n: int, k: int = 7, temperature: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Labels follow softmax(z) but the model reports logits ``temperature * z``."""
    z = rng.normal(scale=1.0, size=(n, k))
    probs = softmax(z, axis=1)
    y = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    return np.minimum(y, k - 1), temperature * z


@pytest.fixture
def classes() -> tuple[str, ...]:
    return CLASSES


@pytest.fixture
def malignant() -> tuple[str, ...]:
    return MALIGNANT


@pytest.fixture
def simulated_calibrated():
    """``f(rng, n, k=7) -> (y, probs)``: perfectly calibrated simulated predictions."""
    return _calibrated


@pytest.fixture
def simulated_overconfident():
    """``f(rng, n, k=7, temperature=3) -> (y, logits)``: over-confident simulated logits."""
    return _overconfident
