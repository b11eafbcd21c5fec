"""Pure numpy scores computed from the network outputs (shared by export and predictor).

Export fits the out-of-distribution threshold with the same functions the
predictor applies, so the stored threshold means exactly what is computed in
the clinic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def energy_score(logits: np.ndarray) -> np.ndarray:
    """Energy score ``-logsumexp(logits)`` per row (Liu et al., NeurIPS 2020).

    Higher means less like the training distribution: in-distribution images
    tend to get one large logit, whose log-sum-exp is large, so their energy is low.
    """
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(axis=1)
    return -(m + np.log(np.exp(z - m[:, None]).sum(axis=1)))


def fit_ood_threshold(scores: np.ndarray, percentile: float = 95.0) -> float:
    """The score below which ``percentile`` % of (validation) images fall.

    Flagging scores above it flags about ``100 - percentile`` % of in-distribution
    images by design; what it catches out of distribution is an empirical question.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("cannot fit an OOD threshold on zero images")
    return float(np.percentile(scores, percentile))


def malignant_probability(
    probabilities: np.ndarray, classes: Sequence[str], malignant: Sequence[str]
) -> np.ndarray:
    """Sum of the calibrated probabilities of the malignant classes, per row."""
    idx = [i for i, c in enumerate(classes) if c in set(malignant)]
    p = np.asarray(probabilities, dtype=np.float64)
    return p[:, idx].sum(axis=1) if idx else np.zeros(p.shape[0])
