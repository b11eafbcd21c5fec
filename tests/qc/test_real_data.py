"""Real data: HAM10000's four sites and Chile's psoriasis referrals (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skinml.qc.examples import chile_referral_counts, ham10000_records
from skinml.qc.pipeline import QcOptions, analyse_records, run_rates_qc
from skinml.qc.rates import validate_counts
from skinml.qc.records import QcColumns, validate_records

SHARED = Path(
    os.environ.get(
        "SKINML_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)


def _dataset(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path


@pytest.mark.real_data
def test_chile_counts_follow_source_md():
    counts = chile_referral_counts(_dataset("chile_psoriasis_referrals"))
    assert counts["hospital"].nunique() == 22
    assert (
        counts["events"].sum() == 1994 + 2424
    )  # SOURCE.md totals for 2016 + 2017 (F + M, no T rows)
    ays = counts[counts["hospital"] == "Aconcagua"]
    assert set(ays["years"]) == {"2017"}  # reports only in 2017: no 2016 person-years


@pytest.mark.real_data
def test_chile_poisson_funnel(tmp_path: Path):
    raw = chile_referral_counts(_dataset("chile_psoriasis_referrals"))
    counts, excluded = validate_counts(raw, strata=["sex", "age_band"])
    funnels, _ = run_rates_qc(counts, excluded, tmp_path, strata=["sex", "age_band"], report=False)
    crude, std = funnels
    assert len(crude.table) == 22 and excluded.empty
    assert crude.target * 1e5 == pytest.approx(4418 / (9.02e6 + 10.65e6) * 1e5, rel=0.02)
    assert crude.overdispersion.applied  # between-service variation is far beyond chance
    assert std.target == 1.0 and (tmp_path / "flags.csv").is_file()


@pytest.mark.real_data
def test_ham10000_case_mix_explains_part_of_site_differences():
    raw = ham10000_records(_dataset("ham10000_images_200x150") / "manifest.csv")
    rec = validate_records(raw, QcColumns(covariates=("age", "sex", "localization")))
    assert rec.excluded.empty and len(rec.frame) == 10015
    res = analyse_records(
        rec, QcOptions(n_bootstrap=50, per_diagnosis=False, progress=False, report=False)
    )
    crude = res.summary["mix_adjusted"]["pearson_chi2_crude_total"]
    adjusted = res.summary["mix_adjusted"]["pearson_chi2_adjusted_total"]
    assert adjusted < 0.6 * crude
    cells = res.tables["mix_crude"].set_index(["hospital", "diagnosis"])
    assert cells.loc[("vidir_molemax", "nv"), "share"] > 0.9
