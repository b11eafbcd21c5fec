"""The in-memory risk dataset every model is fitted on, and its feature builder.

A :class:`RiskDataset` holds raw features (NaN = missing) in a fixed column
order, SNP dosages counted in the weights table's effect allele first, then
the encoded survey features. :func:`impute` fills gaps with training-split
means (PLINK's mean imputation for genotypes). The predictor repeats exactly
these steps from the metadata, so the exported model sees the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from skinml.risk.harmonise import WeightSnp


@dataclass
class RiskDataset:
    """Features, outcome and everything the model file must remember about them.

    Attributes:
        name: dataset name (``simulated``, ``uci_dermatology``, ...).
        X: raw features, columns = ``snp_features + survey_features``.
        y: 0/1 outcome.
        sample_ids: pseudonymised IDs, aligned with ``X``.
        weights: weights-table rows of the SNP features (None without genotypes).
        survey_fields: survey schema (see :mod:`skinml.risk.schema`).
        simulated: True for simulator output (labelled everywhere).
        true_risk: the simulator's true risk per subject (oracle), else None.
        groups: optional cluster labels (e.g. patient) for grouped splits.
        reports: join/match/leakage reports for metrics.json and the HTML report.
    """

    name: str
    X: pd.DataFrame
    y: np.ndarray
    sample_ids: list[str]
    weights: pd.DataFrame | None
    survey_fields: list[dict[str, Any]]
    simulated: bool = False
    true_risk: np.ndarray | None = None
    groups: np.ndarray | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    positive_class: str = "psoriasis"
    negative_class: str = "no_psoriasis"
    description: str = ""
    weights_version: str | None = None
    ambiguous_policy: str = "frequency"
    freq_margin: float = 0.1

    @property
    def snp_features(self) -> list[str]:
        return [] if self.weights is None else self.weights["snp"].tolist()

    @property
    def survey_features(self) -> list[str]:
        return [c for c in self.X.columns if c not in set(self.snp_features)]

    def weight_snps(self) -> list[WeightSnp]:
        if self.weights is None:
            return []
        return [WeightSnp.from_mapping(r) for r in self.weights.to_dict("records")]

    def subset(self, idx: np.ndarray) -> RiskDataset:
        """Rows ``idx`` (positional) as a new dataset sharing the metadata."""
        import copy

        out = copy.copy(self)
        out.X = self.X.iloc[idx].reset_index(drop=True)
        out.y = self.y[idx]
        out.sample_ids = [self.sample_ids[i] for i in idx]
        out.true_risk = None if self.true_risk is None else self.true_risk[idx]
        out.groups = None if self.groups is None else self.groups[idx]
        return out


def feature_means(X: pd.DataFrame, fallback: dict[str, float] | None = None) -> dict[str, float]:  # noqa: N803
    """Training-split means used for imputation.

    A column with no observed value (e.g. an A/T SNP dropped as ambiguous)
    takes ``fallback`` (for SNPs: twice the reference effect-allele
    frequency, as PLINK does), else 0.
    """
    m = X.mean(axis=0, skipna=True)
    fb = fallback or {}
    return {c: float(fb.get(c, 0.0) if np.isnan(v) else v) for c, v in m.items()}


def reference_dosages(ds: RiskDataset) -> dict[str, float]:
    """``2 x effect_allele_freq`` per SNP feature, the PLINK imputation fallback."""
    if ds.weights is None:
        return {}
    w = ds.weights.dropna(subset=["effect_allele_freq"])
    return {str(s): 2.0 * float(f) for s, f in zip(w["snp"], w["effect_allele_freq"], strict=True)}


def impute(X: pd.DataFrame, means: dict[str, float]) -> pd.DataFrame:  # noqa: N803
    """Fill NaN with the stored means (genotypes: PLINK-style mean imputation)."""
    return X.fillna(value=means).astype(float)
