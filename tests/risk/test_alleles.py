"""Allele matching as PLINK --score does it: orientation, strand flips, A/T-C/G SNPs."""

from __future__ import annotations

import pytest

from skinml.risk.alleles import (
    AMBIGUOUS_DROPPED,
    AMBIGUOUS_KEPT,
    ASSUMED,
    FLIPPED,
    MATCHED,
    MISMATCH,
    is_ambiguous,
    match_alleles,
)


@pytest.mark.parametrize(
    ("effect", "other", "alt", "ref", "status", "effect_is_counted"),
    [
        ("T", "C", "T", "C", MATCHED, True),  # effect allele is ALT
        ("T", "C", "C", "T", MATCHED, False),  # effect allele is REF: use 2 - dosage
        ("T", "C", "A", "G", FLIPPED, True),  # other strand
        ("T", "C", "G", "A", FLIPPED, False),  # other strand, effect is REF
        ("T", "C", "G", "T", MISMATCH, None),  # T/G is not T/C on either strand
        ("A", None, "A", "G", MATCHED, True),  # weights without other allele
    ],
)
def test_match_outcomes(effect, other, alt, ref, status, effect_is_counted):
    m = match_alleles(effect, other, alt, ref)
    assert (m.status, m.effect_is_counted) == (status, effect_is_counted)


def test_ambiguous_snps_are_dropped_or_resolved_by_frequency():
    assert is_ambiguous("A", "T") and is_ambiguous("g", "c") and not is_ambiguous("A", "G")
    assert match_alleles("G", "C", "G", "C", ambiguous="drop").status == AMBIGUOUS_DROPPED
    # effect G at 0.93; the counted (ALT) allele G is rare in the target: must be the other strand
    m = match_alleles(
        "G", "C", "G", "C", ambiguous="frequency", effect_freq=0.93, counted_freq=0.08
    )
    assert (m.status, m.effect_is_counted) == (AMBIGUOUS_KEPT, False)
    m = match_alleles("G", "C", "G", "C", ambiguous="frequency", effect_freq=0.93, counted_freq=0.9)
    assert (m.status, m.effect_is_counted) == (AMBIGUOUS_KEPT, True)
    # frequencies near 0.5 cannot tell strands apart
    m = match_alleles(
        "T", "A", "T", "A", ambiguous="frequency", effect_freq=0.45, counted_freq=0.44
    )
    assert m.status == AMBIGUOUS_DROPPED and "0.5" in m.note


def test_dosage_columns_with_only_the_counted_allele():
    assert (
        match_alleles("T", "C", "C", None).effect_is_counted is False
    )  # rs_C counts the other allele
    assert match_alleles("T", "C", "A", None).status == FLIPPED
    assert match_alleles("T", "C", None, None).status == ASSUMED
