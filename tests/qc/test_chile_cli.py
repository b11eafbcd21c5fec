"""``skinml-qc chile-referrals``: the real Chilean referral counts from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from skinml.cli.qc import main

SHARED = Path(
    os.environ.get(
        "SKINML_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)


@pytest.fixture(scope="module")
def chile_run(tmp_path_factory) -> Path:
    folder = SHARED / "chile_psoriasis_referrals"
    if not (folder / "casos_servicio.csv").is_file():
        pytest.skip(f"real data {folder} is absent (set SKINML_SHARED_DATA)")
    out = tmp_path_factory.mktemp("chile") / "qc"
    assert main(["chile-referrals", str(folder), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.real_data
def test_chile_rates_are_per_100000_and_counts_are_integers(chile_run: Path) -> None:
    rates = pd.read_csv(chile_run / "rates.csv")
    assert len(rates) == 22 and rates["events"].dtype.kind == "i"
    assert rates["events"].sum() == 1994 + 2424  # SOURCE.md, F + M rows only
    funnels = pd.read_csv(chile_run / "funnels.csv")
    crude = funnels[funnels["indicator"].str.contains("crude")]
    assert crude["indicator"].iloc[0] == "psoriasis referrals (crude, per 100,000 person-years)"
    assert (crude["per"] == 100_000).all() and crude["events"].dtype.kind == "i"
    # the national crude rate is about 22 per 100,000 (SOURCE.md: 22.1 and 22.8)
    assert crude["target"].iloc[0] == pytest.approx(22.46, abs=0.1)
    aysen = crude[crude["unit"].str.startswith("Ays")].iloc[0]
    assert aysen["value"] == pytest.approx(aysen["events"] / aysen["volume"] * 1e5)
    summary = json.loads((chile_run / "summary.json").read_text())
    assert summary["events"] == 4418 and isinstance(summary["events"], int)


@pytest.mark.real_data
def test_chile_report_says_p_below_not_p_zero(chile_run: Path) -> None:
    html = (chile_run / "report.html").read_text(encoding="utf-8")
    assert "p &lt; 0.001" in html or "p < 0.001" in html
    assert "p = 0 " not in html and "p = 0)" not in html and "p = 0," not in html
    assert "per 100,000 person-years" in html
    assert "4418.000" not in html and "1994.000" not in html
    assert "referrals, not confirmed diagnoses" in html
    services = sorted(p.name for p in (chile_run / "units").glob("*.html"))
    assert len(services) == 22 and 'href="units/Aconcagua.html"' in html
