"""Allele matching between a weights table and a genotype source (pure, stdlib only).

GWAS catalogues report alleles on either DNA strand, and VCF files count the
ALT allele, so a score weight for "effect allele T" may have to be applied to
``2 - ALT dosage`` (the effect allele is REF) or to the complement strand
(A<->T, C<->G). PLINK ``--score`` does the same matching. A/T and C/G SNPs are
*ambiguous*: their complement is the same allele pair, so strand cannot be
read from the alleles; they are dropped, or kept when the allele frequency
tells the strands apart (far enough from 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}

# Status values (also the keys of the match report).
MATCHED = "matched"
FLIPPED = "flipped"
AMBIGUOUS_KEPT = "ambiguous_kept"
AMBIGUOUS_DROPPED = "ambiguous_dropped"
MISMATCH = "allele_mismatch"
ABSENT = "absent"
ASSUMED = "assumed_effect_allele"
MULTIALLELIC = "multiallelic"
STATUSES = (
    MATCHED,
    FLIPPED,
    AMBIGUOUS_KEPT,
    AMBIGUOUS_DROPPED,
    MISMATCH,
    ABSENT,
    ASSUMED,
    MULTIALLELIC,
)
USABLE = frozenset({MATCHED, FLIPPED, AMBIGUOUS_KEPT, ASSUMED})
AMBIGUITY_POLICIES = ("drop", "frequency")


@dataclass(frozen=True)
class AlleleMatch:
    """Outcome of matching one weights-table SNP against one genotype variant.

    Attributes:
        status: one of :data:`STATUSES`.
        effect_is_counted: True when the genotype dosage counts the effect
            allele, False when it counts the other allele (use ``2 - dosage``),
            None when the SNP cannot be used.
        note: a short human-readable reason, shown in the match report.
    """

    status: str
    effect_is_counted: bool | None
    note: str = ""

    @property
    def usable(self) -> bool:
        return self.status in USABLE


def complement(allele: str) -> str:
    """Complementary base of a single-nucleotide allele; other alleles unchanged."""
    return COMPLEMENT.get(allele.upper(), allele.upper())


def is_ambiguous(a1: str, a2: str) -> bool:
    """True for A/T and C/G pairs, whose strand cannot be told from the alleles."""
    return {a1.upper(), a2.upper()} in ({"A", "T"}, {"C", "G"})


def _norm(allele: str | None) -> str | None:
    if allele is None:
        return None
    text = str(allele).strip().upper()
    return text if text and text not in {".", "NAN", "NONE", "?"} else None


def match_alleles(
    effect: str,
    other: str | None,
    counted: str | None,
    uncounted: str | None,
    *,
    ambiguous: str = "drop",
    effect_freq: float | None = None,
    counted_freq: float | None = None,
    freq_margin: float = 0.1,
) -> AlleleMatch:
    """Decide whether and how a genotype dosage maps onto the effect allele.

    Args:
        effect: the weights table's effect (risk) allele.
        other: its other allele, or None when the table gives none.
        counted: the allele the dosage counts (VCF ALT; the ``_A`` suffix of a
            PLINK ``.raw`` column), or None when the source does not say.
        uncounted: the other genotype allele (VCF REF), or None.
        ambiguous: ``"drop"`` A/T and C/G SNPs, or resolve them by
            ``"frequency"`` (needs ``effect_freq`` and ``counted_freq``).
        effect_freq: effect-allele frequency of the weights table (reference).
        counted_freq: frequency of the counted allele in the target samples.
        freq_margin: frequencies within this distance of 0.5 cannot resolve
            strand, so such SNPs are dropped even under ``"frequency"``.

    Returns:
        The match outcome.
    """
    if ambiguous not in AMBIGUITY_POLICIES:
        raise ValueError(f"ambiguous must be one of {AMBIGUITY_POLICIES}, got {ambiguous!r}")
    eff, oth, cnt, unc = _norm(effect), _norm(other), _norm(counted), _norm(uncounted)
    if eff is None:
        return AlleleMatch(MISMATCH, None, "weights table has no effect allele")
    if cnt is None:
        # A bare dosage column (no allele in its name): by documented convention it
        # counts the effect allele; reported separately so the user can check.
        return AlleleMatch(
            ASSUMED, True, "dosage column names no allele; assumed to count the effect allele"
        )
    geno = {cnt} | ({unc} if unc else set())
    pair_ambiguous = (oth is not None and is_ambiguous(eff, oth)) or (
        unc is not None and is_ambiguous(cnt, unc)
    )
    if pair_ambiguous:
        return _resolve_ambiguous(eff, cnt, ambiguous, effect_freq, counted_freq, freq_margin)
    if oth is not None and unc is not None:
        if {eff, oth} == {cnt, unc}:
            return AlleleMatch(MATCHED, eff == cnt)
        if {complement(eff), complement(oth)} == {cnt, unc}:
            return AlleleMatch(
                FLIPPED, complement(eff) == cnt, "alleles reported on the other strand"
            )
    elif unc is not None:  # weights table gives only the effect allele
        if eff in geno:
            return AlleleMatch(MATCHED, eff == cnt)
        if complement(eff) in geno:
            return AlleleMatch(
                FLIPPED, complement(eff) == cnt, "alleles reported on the other strand"
            )
    else:  # dosage column that names only its counted allele
        same = {eff: True, **({oth: False} if oth else {})}
        if cnt in same:
            return AlleleMatch(MATCHED, same[cnt])
        comp = {complement(a): v for a, v in same.items()}
        if cnt in comp:
            return AlleleMatch(FLIPPED, comp[cnt], "alleles reported on the other strand")
    return AlleleMatch(
        MISMATCH,
        None,
        f"weights alleles {eff}/{oth or '?'} do not match genotype alleles "
        f"{unc or '?'}/{cnt} on either strand",
    )


def _resolve_ambiguous(
    eff: str,
    cnt: str,
    policy: str,
    effect_freq: float | None,
    counted_freq: float | None,
    margin: float,
) -> AlleleMatch:
    if policy == "drop":
        return AlleleMatch(AMBIGUOUS_DROPPED, None, "A/T or C/G SNP dropped (ambiguous strand)")
    if effect_freq is None or counted_freq is None:
        return AlleleMatch(AMBIGUOUS_DROPPED, None, "A/T or C/G SNP without allele frequencies")
    if abs(effect_freq - 0.5) < margin or abs(counted_freq - 0.5) < margin:
        return AlleleMatch(
            AMBIGUOUS_DROPPED, None, f"A/T or C/G SNP with frequency within {margin} of 0.5"
        )
    # The allele whose frequency falls on the same side of 0.5 is the same allele.
    same_side = (effect_freq - 0.5) * (counted_freq - 0.5) > 0
    literal = eff == cnt
    note = "strand resolved by allele frequency"
    if same_side != literal:
        note += " (strand flipped)"
    return AlleleMatch(AMBIGUOUS_KEPT, same_side, note)
