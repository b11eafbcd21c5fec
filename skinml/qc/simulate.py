"""SIMULATED regions of hospitals with known, planted diagnostic biases.

No public table of per-hospital diagnoses with a reference exists (see
shared/data/README.md), so QC's detection power is measured on simulated
records with a known truth. Everything produced here is labelled simulated:
hospital names start with ``SIM-`` and the frame carries ``simulated = True``.

The model is deliberately not too kind to the detector:

* volumes are log-normal (median ≈ 300 cases/year) clipped to 50–2,000;
* hospitals differ in true case mix (a random effect on each diagnosis'
  prevalence, and in mean patient age, which raises the malignant share);
* clinicians' accuracy varies between hospitals (a random effect on the
  logit of per-class accuracy), so unbiased hospitals are overdispersed;
* the AI reference is imperfect (about 80% per-class accuracy) but the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Diagnoses of a general dermatology referral clinic and their base prevalence (SIMULATED).
DIAGNOSES: tuple[str, ...] = (
    "melanoma",
    "nevus",
    "bcc",
    "scc",
    "seb_keratosis",
    "psoriasis",
    "eczema",
    "other",
)
BASE_PREVALENCE = np.array([0.04, 0.24, 0.08, 0.03, 0.15, 0.10, 0.20, 0.16])
#: Change in log-odds per 10 years of age (malignancies rise with age, nevi fall).
AGE_EFFECT = np.array([0.25, -0.30, 0.45, 0.50, 0.35, 0.0, -0.05, 0.0])
#: Which wrong label each diagnosis is most often confused with.
CONFUSED_WITH = {
    "melanoma": "nevus",
    "nevus": "seb_keratosis",
    "bcc": "scc",
    "scc": "bcc",
    "seb_keratosis": "nevus",
    "psoriasis": "eczema",
    "eczema": "psoriasis",
    "other": "eczema",
}


@dataclass(frozen=True)
class PlantedBias:
    """A bias of known size.

    With probability ``size`` a case of one of ``true_labels`` that the clinician would
    have called ``from_label`` (or anything, if None) is called ``to_label``.
    """

    hospital: str
    kind: str  # "under-call" or "over-call"
    true_labels: tuple[str, ...]
    to_label: str
    size: float
    from_label: str | None = None


@dataclass
class SimulatedRegion:
    """Records plus the ground truth of the simulation."""

    records: pd.DataFrame
    volumes: pd.Series
    biases: list[PlantedBias] = field(default_factory=list)


def _confusion(accuracy: float, off_main: float = 0.6) -> np.ndarray:
    """Row-stochastic true→called matrix: ``accuracy`` on the diagonal, most errors to the
    confused-with label, the rest spread evenly."""
    k = len(DIAGNOSES)
    m = np.full((k, k), (1 - accuracy) * (1 - off_main) / (k - 2))
    for i, d in enumerate(DIAGNOSES):
        m[i, i] = accuracy
        m[i, DIAGNOSES.index(CONFUSED_WITH[d])] = (1 - accuracy) * off_main
    return m


def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a probability matrix (vectorised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return (u < cum).argmax(axis=1)


def simulate_region(
    n_hospitals: int = 30,
    *,
    seed: int = 0,
    volume_median: float = 300.0,
    volume_sigma: float = 0.9,
    volume_range: tuple[int, int] = (50, 2000),
    total_records: int | None = None,
    prevalence_sd: float = 0.2,
    age_sd_between: float = 4.0,
    clinician_accuracy: float = 0.85,
    accuracy_sd: float = 0.15,
    ai_accuracy: float = 0.80,
    biases: Mapping[str, tuple[str, float]] | None = None,
    months: int = 24,
    start: str = "2025-01-01",
) -> SimulatedRegion:
    """Simulate one region's QC records (SIMULATED data).

    Args:
        biases: hospital name → (bias type, size) with bias type ``under-call melanoma``
            (true melanomas the clinician would call melanoma are called nevus with
            probability ``size``) or ``over-call psoriasis`` (true eczema and "other" cases are
            called psoriasis with probability ``size``).
        total_records: scale volumes so that they sum to this (for run-time tests).

    Returns:
        A :class:`SimulatedRegion` whose records have ``hospital, case, diagnosis, ai,
        true_diagnosis, age, sex, device, date, simulated``.
    """
    rng = np.random.default_rng(seed)
    names = [f"SIM-H{i + 1:02d}" for i in range(n_hospitals)]
    vol = np.exp(rng.normal(np.log(volume_median), volume_sigma, n_hospitals))
    vol = np.clip(np.round(vol), *volume_range).astype(int)
    if total_records is not None:
        vol = np.maximum(1, np.round(vol * total_records / vol.sum())).astype(int)
    hosp_idx = np.repeat(np.arange(n_hospitals), vol)
    n = len(hosp_idx)
    k = len(DIAGNOSES)

    mean_age = 55 + rng.normal(0, age_sd_between, n_hospitals)
    age = np.clip(rng.normal(mean_age[hosp_idx], 18), 1, 99).round()
    log_prev = np.log(BASE_PREVALENCE)[None, :] + rng.normal(0, prevalence_sd, (n_hospitals, k))
    logits = log_prev[hosp_idx] + ((age - 55) / 10)[:, None] * AGE_EFFECT[None, :]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    truth = _sample_rows(probs, rng)

    logit_acc = np.log(clinician_accuracy / (1 - clinician_accuracy)) + rng.normal(
        0, accuracy_sd, n_hospitals
    )
    acc = 1 / (1 + np.exp(-logit_acc))
    called = np.empty(n, dtype=np.int64)
    for h in range(n_hospitals):
        rows = hosp_idx == h
        called[rows] = _sample_rows(_confusion(acc[h])[truth[rows]], rng)
    ai = _sample_rows(_confusion(ai_accuracy)[truth], rng)

    planted = []
    for name, (kind, size) in (biases or {}).items():
        h = names.index(name)
        rows = hosp_idx == h
        if kind == "under-call melanoma":
            b = PlantedBias(name, kind, ("melanoma",), "nevus", size, from_label="melanoma")
            target = rows & (truth == 0) & (called == 0)
        elif kind == "over-call psoriasis":
            b = PlantedBias(name, kind, ("eczema", "other"), "psoriasis", size)
            target = rows & np.isin(truth, [DIAGNOSES.index("eczema"), DIAGNOSES.index("other")])
        else:
            raise ValueError(
                f"unknown bias type {kind!r}; use 'under-call melanoma' or 'over-call psoriasis'"
            )
        flip = target & (rng.random(n) < size)
        called[flip] = DIAGNOSES.index(b.to_label)
        planted.append(b)

    labels = np.array(DIAGNOSES, dtype=object)
    day = rng.integers(0, months * 30, n)
    records = pd.DataFrame(
        {
            "hospital": np.array(names, dtype=object)[hosp_idx],
            "case": np.char.add("SIM-C", np.arange(1, n + 1).astype(str)).astype(object),
            "diagnosis": labels[called],
            "ai": labels[ai],
            "true_diagnosis": labels[truth],
            "age": age,
            "sex": np.where(rng.random(n) < 0.52, "female", "male").astype(object),
            "device": np.char.add(
                np.array(names)[hosp_idx], np.where(rng.random(n) < 0.7, "-D1", "-D2")
            ).astype(object),
            "date": pd.Timestamp(start) + pd.to_timedelta(day, unit="D"),
            "simulated": True,
        }
    )
    return SimulatedRegion(records, pd.Series(vol, index=names, name="cases"), planted)
