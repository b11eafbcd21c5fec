"""Harmonise genotypes to a weights table and score them, as PLINK ``--score`` does.

Pure numpy + stdlib so that training (``skinml.risk``) and the clinician's
predictor (``skinml.predict.tabular``) turn the same VCF into the same numbers.
Per weights-table SNP the genotype variant is found by ID (or ``chrom:pos``),
its alleles matched (:func:`skinml.risk.alleles.match_alleles`), the dosage
re-oriented to count the effect allele, and missing genotypes mean-imputed
with the *training* effect-allele frequency, as PLINK does with its
reference frequencies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from skinml.risk.alleles import (
    ABSENT,
    AMBIGUOUS_DROPPED,
    AMBIGUOUS_KEPT,
    MULTIALLELIC,
    STATUSES,
    AlleleMatch,
    match_alleles,
)

MIN_SAMPLES_FOR_FREQUENCY = 50  # below this, a batch frequency cannot resolve A/T, C/G SNPs


@dataclass(frozen=True)
class WeightSnp:
    """One row of a weights table (effect allele, other allele, weight = log OR)."""

    snp: str
    effect_allele: str
    other_allele: str | None
    weight: float
    effect_allele_freq: float | None = None
    chrom: str | None = None
    pos: int | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, object]) -> WeightSnp:
        """Build from a dict (a metadata entry or a DataFrame record)."""

        def opt(key: str) -> object | None:
            value = row.get(key)
            if value is None or (isinstance(value, float) and value != value):
                return None
            return value

        freq = opt("effect_allele_freq")
        pos = opt("pos")
        chrom = opt("chrom")
        other = opt("other_allele")
        return cls(
            snp=str(row["snp"]),
            effect_allele=str(row["effect_allele"]),
            other_allele=None if other is None else str(other),
            weight=float(row["weight"]),  # type: ignore[arg-type]
            effect_allele_freq=None if freq is None else float(freq),  # type: ignore[arg-type]
            chrom=None if chrom is None else str(chrom),
            pos=None if pos is None else int(pos),  # type: ignore[call-overload]
        )


@dataclass(frozen=True)
class VariantInfo:
    """A genotype variant: its ID and which allele the dosage counts (VCF ALT)."""

    key: str
    counted: str | None
    uncounted: str | None = None
    chrom: str | None = None
    pos: int | None = None


@dataclass
class Harmonised:
    """Effect-allele dosages in weights-table order plus the per-SNP match outcome.

    Attributes:
        snps: weights-table SNP IDs (the column order of ``dosages``).
        dosages: ``(n_samples, n_snps)`` effect-allele dosages, NaN where the
            genotype is missing or the SNP could not be used.
        matches: per SNP, the allele match (status ``absent`` when the
            genotype source lacks it).
    """

    snps: list[str]
    dosages: np.ndarray
    matches: list[AlleleMatch]
    variant_keys: list[str | None] = field(default_factory=list)
    counted_alleles: list[str | None] = field(default_factory=list)

    def resolved_ambiguous(self) -> dict[str, list[object]]:
        """``{snp: [counted allele, effect_is_counted]}`` for A/T-C/G SNPs resolved by frequency.

        Stored in the model metadata so that the predictor can apply the same
        decision to small batches (fewer than :data:`MIN_SAMPLES_FOR_FREQUENCY`
        samples cannot resolve strand themselves) coded like the training data.
        """
        return {
            s: [c, m.effect_is_counted]
            for s, m, c in zip(self.snps, self.matches, self.counted_alleles, strict=True)
            if m.status == AMBIGUOUS_KEPT
        }

    def counts(self) -> dict[str, int]:
        """How many SNPs matched, flipped, were ambiguous, mismatched or absent."""
        c = Counter(m.status for m in self.matches)
        return {s: int(c.get(s, 0)) for s in STATUSES}

    def n_usable(self) -> int:
        return sum(m.usable for m in self.matches)

    def report_rows(self) -> list[dict[str, object]]:
        """One dict per SNP for the match report (CSV / HTML / MLflow)."""
        return [
            {
                "snp": s,
                "status": m.status,
                "effect_is_counted": m.effect_is_counted,
                "genotype_variant": k,
                "counted_allele": c,
                "note": m.note,
            }
            for s, m, k, c in zip(
                self.snps, self.matches, self.variant_keys, self.counted_alleles, strict=True
            )
        ]


def _index_variants(variants: Sequence[VariantInfo]) -> tuple[dict[str, int], dict[str, int]]:
    by_id: dict[str, int] = {}
    by_pos: dict[str, int] = {}
    for j, v in enumerate(variants):
        if v.key and v.key != ".":
            by_id.setdefault(v.key, j)
        if v.chrom is not None and v.pos is not None:
            by_pos.setdefault(f"{str(v.chrom).removeprefix('chr')}:{v.pos}", j)
    return by_id, by_pos


def harmonise(
    weights: Sequence[WeightSnp],
    variants: Sequence[VariantInfo],
    counted_dosages: np.ndarray,
    *,
    ambiguous: str = "drop",
    freq_margin: float = 0.1,
    known_ambiguous: Mapping[str, Sequence[object]] | None = None,
) -> Harmonised:
    """Re-orient genotype dosages to count each weights-table effect allele.

    Args:
        weights: the weights table, in the model's feature order.
        variants: genotype variants, aligned with the columns of ``counted_dosages``.
        counted_dosages: ``(n_samples, n_variants)`` dosages of each variant's
            counted allele (0/1/2, NaN when missing).
        ambiguous: ``"drop"`` or ``"frequency"`` for A/T and C/G SNPs.
        freq_margin: see :func:`skinml.risk.alleles.match_alleles`.
        known_ambiguous: training-time decisions for A/T-C/G SNPs
            (:meth:`Harmonised.resolved_ambiguous`), used when this batch is too
            small to resolve strand by frequency and codes the SNP with the same
            counted allele as the training data.

    Returns:
        The harmonised dosages and the match outcome of every SNP.
    """
    counted_dosages = np.asarray(counted_dosages, dtype=float)
    n = counted_dosages.shape[0]
    by_id, by_pos = _index_variants(variants)
    out = np.full((n, len(weights)), np.nan)
    matches: list[AlleleMatch] = []
    keys: list[str | None] = []
    counted_alleles: list[str | None] = []
    known = dict(known_ambiguous or {})
    for i, w in enumerate(weights):
        j = by_id.get(w.snp)
        if j is None and w.chrom is not None and w.pos is not None:
            j = by_pos.get(f"{str(w.chrom).removeprefix('chr')}:{w.pos}")
        if j is None:
            matches.append(AlleleMatch(ABSENT, None, "not in the genotype file"))
            keys.append(None)
            counted_alleles.append(None)
            continue
        v = variants[j]
        keys.append(v.key)
        counted_alleles.append(v.counted)
        if v.counted is not None and "," in v.counted:
            matches.append(AlleleMatch(MULTIALLELIC, None, f"multi-allelic ALT {v.counted}"))
            continue
        col = counted_dosages[:, j]
        counted_freq = None
        n_obs = int(np.sum(~np.isnan(col)))
        if n_obs >= MIN_SAMPLES_FOR_FREQUENCY:
            counted_freq = float(np.nanmean(col) / 2.0)
        m = match_alleles(
            w.effect_allele,
            w.other_allele,
            v.counted,
            v.uncounted,
            ambiguous=ambiguous,
            effect_freq=w.effect_allele_freq,
            counted_freq=counted_freq,
            freq_margin=freq_margin,
        )
        if m.status == AMBIGUOUS_DROPPED and counted_freq is None and w.snp in known:
            k_counted, k_flag = known[w.snp]
            if k_counted is not None and str(k_counted).upper() == (v.counted or "").upper():
                m = AlleleMatch(
                    AMBIGUOUS_KEPT, bool(k_flag), "A/T or C/G SNP resolved as in the training data"
                )
        matches.append(m)
        if m.usable:
            out[:, i] = col if m.effect_is_counted else 2.0 - col
    return Harmonised([w.snp for w in weights], out, matches, keys, counted_alleles)


def impute_mean(
    dosages: np.ndarray, means: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN dosages by the per-SNP mean (PLINK's default for ``--score``).

    Returns:
        The imputed matrix and, per sample, how many values were imputed.
    """
    d = np.array(dosages, dtype=float, copy=True)
    mask = np.isnan(d)
    means_arr = np.asarray(means, dtype=float)
    if mask.any():
        d[mask] = np.broadcast_to(means_arr, d.shape)[mask]
    return d, mask.sum(axis=1)


def polygenic_score(
    dosages: np.ndarray, weights: Sequence[WeightSnp], *, average: bool = False
) -> np.ndarray:
    """Weighted sum of effect-allele dosages (``average``: divided by 2 x #SNPs, as PLINK 1.9)."""
    w = np.array([s.weight for s in weights], dtype=float)
    score = np.asarray(dosages, dtype=float) @ w
    if average:
        score = score / (2.0 * len(w))
    return score
