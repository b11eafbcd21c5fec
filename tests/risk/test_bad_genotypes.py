"""Issue 15: malformed GT values never reach htslib, never score "ok", and a survey must fit."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pandas as pd
import pytest

from skinml.errors import DataError, ManyErrors
from skinml.risk.textvcf import check_vcf_genotypes, gt_dosage, read_vcf_text

MALFORMED = ["0/X", "A/G", "1/a", "0/1/", "0//1", "1/2"]  # 1/2: the site has one ALT
HEADER = (
    "##fileformat=VCFv4.2\n##contig=<ID=6>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
)


def _vcf(path: Path, gt: str) -> Path:
    text = HEADER + f"6\t100\trs1\tC\tT\t.\tPASS\t.\tGT\t0/1\t{gt}\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("gt", "dosage"), [("0/0", 0), ("0|1", 1), ("1/1", 2), ("1", 1), ("0/2", 1), ("2|2", 2)]
)
def test_valid_genotypes_count_alt_alleles(gt, dosage):
    assert gt_dosage(gt, n_alleles=3) == (dosage, None)
    assert math.isnan(gt_dosage("./.", 2)[0]) and gt_dosage("./.", 2)[1] is None


@pytest.mark.parametrize("gt", MALFORMED)
def test_malformed_genotypes_are_errors_not_alt_alleles(gt):
    value, reason = gt_dosage(gt, n_alleles=2)
    assert math.isnan(value) and reason and gt in reason


@pytest.mark.parametrize("gt", MALFORMED)
@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz"])
def test_training_reader_refuses_before_htslib_sees_the_file(tmp_path, gt, suffix):
    from skinml.risk.genotypes import read_genotypes

    pytest.importorskip("cyvcf2")
    path = _vcf(tmp_path / f"g{suffix}", gt)
    with pytest.raises(ManyErrors) as info:
        read_genotypes(path)
    text = str(info.value)
    assert "row 5" in text and "'S2'" in text and gt in text and "Fix:" in text


def test_predictor_reader_marks_only_the_bad_sample(tmp_path):
    got = read_vcf_text(_vcf(tmp_path / "g.vcf", "0/X"))
    assert got.errors[0] == [] and "0/X" in got.errors[1][0] and "line 5" in got.errors[1][0]
    assert got.dosages[0, 0] == 1 and math.isnan(got.dosages[1, 0])


def test_check_names_the_line_of_a_broken_layout(tmp_path):
    path = tmp_path / "g.vcf"
    path.write_text(HEADER + "6\tx\trs1\tC\tT\t.\tPASS\t.\tGT\t0/1\t0/1\n")
    with pytest.raises(DataError, match="row 5"):
        check_vcf_genotypes(path)


def test_predict_vcf_bad_genotype_and_survey_without_a_column(logistic_run, tmp_path):
    """Same file as training: a malformed GT gives that sample an error row, others stay ok."""
    import onnxruntime as ort

    from skinml.modelfile import read_metadata
    from skinml.predict.tabular import run_tabular_predictions

    run, _, _ = logistic_run
    model = run / "risk_model.onnx"
    sess = ort.InferenceSession(str(model))
    meta = read_metadata(model, sess)
    cohort = run / "simulated_cohort"
    with gzip.open(cohort / "simulated_genotypes.vcf.gz", "rt") as fh:
        lines = fh.read().splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    fields = lines[first].split("\t")
    fields[9] = "0/X"
    lines[first] = "\t".join(fields)
    bad_vcf = tmp_path / "bad.vcf"
    bad_vcf.write_text("\n".join(lines) + "\n")
    survey = cohort / "simulated_survey.csv"
    out = run_tabular_predictions(model, meta, sess, bad_vcf, tmp_path / "r.csv", survey=survey)
    got = pd.read_csv(out)
    assert len(got) == 3000
    bad = got[got.status == "error"]
    assert len(bad) == 1 and "0/X" in bad["error"].iloc[0]

    frame = pd.read_csv(survey)
    column = next(f["name"] for f in meta.extra["survey_fields"])
    short = tmp_path / "survey_short.csv"
    frame.drop(columns=[column]).to_csv(short, index=False)
    with pytest.raises(DataError, match=f"survey columns \\['{column}'\\]"):
        run_tabular_predictions(
            model,
            meta,
            sess,
            cohort / "simulated_genotypes.vcf.gz",
            tmp_path / "s.csv",
            survey=short,
        )
