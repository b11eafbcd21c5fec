"""Readers, harmonisation, survey validation and the sample join, on small generated files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinml.errors import DataError, ManyErrors
from skinml.risk import schema
from skinml.risk.genotypes import read_dosage_table, read_vcf
from skinml.risk.harmonise import WeightSnp, harmonise, impute_mean, polygenic_score
from skinml.risk.tables import join_samples, read_survey
from skinml.risk.textvcf import read_vcf_text

VCF = """##fileformat=VCFv4.2
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##contig=<ID=6>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3
6\t100\trs1\tC\tT\t.\tPASS\t.\tGT\t0/0\t0/1\t1|1
6\t200\trs2\tA\tG\t.\tPASS\t.\tGT:DP\t0/1:9\t./.:0\t1/1:7
6\t300\trs3\tG\tC\t.\tPASS\t.\tGT\t0/0\t0/0\t0/1
6\t400\trs4\tT\tG\t.\tPASS\t.\tGT\t0/0\t0/1\t0/1
"""
WEIGHTS = [
    WeightSnp("rs1", "T", "C", 1.0, 0.2),  # matched, effect = ALT
    WeightSnp(
        "rs2", "T", "C", 0.5, 0.3
    ),  # A/G in the VCF = T/C on the other strand; effect T -> A = REF
    WeightSnp("rs3", "G", "C", 0.3, 0.48),  # ambiguous C/G near 0.5: dropped
    WeightSnp("rs4", "A", "C", 0.2, 0.4),  # T/G vs A/C: strand flip, effect A -> T = REF
    WeightSnp("rs9", "A", "G", 0.7, 0.1),  # absent
]


@pytest.fixture
def vcf_files(tmp_path: Path) -> tuple[Path, Path]:
    plain = tmp_path / "g.vcf"
    plain.write_text(VCF)
    gz = tmp_path / "g.vcf.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(VCF)
    return plain, gz


def test_stdlib_reader_agrees_with_cyvcf2(vcf_files):
    for path in vcf_files:
        a, b = read_vcf_text(path), read_vcf(path)
        assert a.samples == b.samples == ["S1", "S2", "S3"]
        np.testing.assert_array_equal(a.dosages, b.dosages)
        assert [(v.key, v.counted, v.uncounted) for v in a.variants] == [
            (v.key, v.counted, v.uncounted) for v in b.variants
        ]
    assert np.isnan(a.dosages[1, 1]) and a.dosages[2, 0] == 2


def test_harmonise_reports_every_snp_and_orients_dosages(vcf_files):
    g = read_vcf_text(vcf_files[1])
    h = harmonise(WEIGHTS, g.variants, g.dosages, ambiguous="drop")
    c = h.counts()
    assert (c["matched"], c["flipped"], c["ambiguous_dropped"], c["absent"]) == (1, 2, 1, 1)
    np.testing.assert_array_equal(h.dosages[:, 0], [0, 1, 2])  # rs1 ALT=T counts the effect allele
    np.testing.assert_array_equal(h.dosages[[0, 2], 1], [1, 0])  # rs2: 2 - ALT dosage
    np.testing.assert_array_equal(h.dosages[:, 3], [2, 1, 1])  # rs4 flipped, effect = REF
    assert np.isnan(h.dosages[:, 2]).all() and np.isnan(h.dosages[:, 4]).all()
    imputed, n_imp = impute_mean(h.dosages, [2 * w.effect_allele_freq for w in WEIGHTS])
    assert n_imp.tolist() == [2, 3, 2]
    expected = imputed @ np.array([w.weight for w in WEIGHTS])
    np.testing.assert_allclose(polygenic_score(imputed, WEIGHTS), expected)


def test_dosage_table_with_plink_names_and_bad_cells(tmp_path: Path):
    p = tmp_path / "dos.csv"
    p.write_text("sample_id,rs1_T,rs2_A\nS1,0,2\nS2,1,\n")
    g = read_dosage_table(p)
    h = harmonise(WEIGHTS[:2], g.variants, g.dosages)
    assert h.counts()["matched"] == 1 and h.counts()["flipped"] == 1
    np.testing.assert_array_equal(
        h.dosages[0], [0, 2]
    )  # rs2_A counts A, the effect allele T on the other strand
    p.write_text("sample_id,rs1_T\nS1,abc\nS2,3\n")
    with pytest.raises(ManyErrors) as exc:
        read_dosage_table(p)
    assert "row 2" in str(exc.value) and "rs1_T" in str(exc.value) and "row 3" in str(exc.value)


FIELDS = [
    {
        "name": "smoking",
        "type": "categorical",
        "levels": ["never", "former", "current"],
        "reference": "never",
    },
    {"name": "bmi", "type": "numeric", "min": 12, "max": 80},
    {"name": "family_history", "type": "binary"},
    {"name": "age", "type": "numeric", "min": 18, "max": 100},
]


def test_survey_encoding_and_errors_name_column_value_and_fix():
    rows = [
        {"smoking": "Current", "bmi": "31.5", "family_history": "yes", "age": "40"},
        {"smoking": "sometimes", "bmi": "heavy", "family_history": "maybe", "age": "150"},
        {"smoking": "", "bmi": "", "family_history": "0", "age": "33"},
    ]
    enc = schema.encode_rows(rows, FIELDS)
    assert enc.feature_names == [
        "smoking=former",
        "smoking=current",
        "bmi",
        "family_history",
        "age",
    ]
    np.testing.assert_array_equal(enc.features[0], [0, 1, 31.5, 1, 40])
    msgs = " ".join(enc.errors[1])
    assert "unknown category 'sometimes'" in msgs and "'heavy' is not a number" in msgs
    assert "not a yes/no answer" in msgs and "150 is out of range [18, 100]" in msgs
    assert enc.errors[2] == [] and enc.n_missing[2] == 2 and np.isnan(enc.features[2, 0])
    with pytest.raises(ManyErrors, match="row 3"):
        schema.raise_if_errors(enc, file="survey.csv")


def test_join_reports_unmatched_and_rejects_duplicates(tmp_path: Path):
    s = tmp_path / "survey.csv"
    s.write_text("sample_id,age\nA,30\nB,40\nD,50\n")
    survey = read_survey(s)
    joined, rep = join_samples(["A", "B", "C"], survey, genotype_file="g.vcf", survey_file=s)
    assert joined == ["A", "B"] and rep.only_in_genotypes == ["C"] and rep.only_in_survey == ["D"]
    with pytest.raises(DataError, match=r"1 only in g\.vcf"):
        join_samples(
            ["A", "B", "C"], survey, genotype_file="g.vcf", survey_file=s, on_unmatched="error"
        )
    s.write_text("sample_id,age\nA,30\nA,31\n")
    with pytest.raises(DataError, match=r"A \(rows \[2, 3\]\)"):
        read_survey(s)


def test_no_overlapping_snps_is_an_error_naming_the_file(tmp_path: Path):
    from skinml.risk.data import load_files

    vcf = tmp_path / "other.vcf"
    vcf.write_text(VCF.replace("rs", "xx"))
    s = tmp_path / "survey.csv"
    s.write_text("sample_id,smoking,bmi,family_history,age,psoriasis\nS1,never,25,0,40,0\n")
    w = tmp_path / "w.tsv"
    pd.DataFrame(
        [
            {
                "snp": x.snp,
                "effect_allele": x.effect_allele,
                "other_allele": x.other_allele,
                "weight": x.weight,
                "effect_allele_freq": x.effect_allele_freq,
            }
            for x in WEIGHTS
        ]
    ).to_csv(w, sep="\t", index=False)
    with pytest.raises(DataError) as exc:
        load_files(genotypes=vcf, survey=s, weights=w, survey_fields=FIELDS)
    assert (
        "other.vcf" in str(exc.value) and "absent" in str(exc.value) and "rsIDs" in str(exc.value)
    )
