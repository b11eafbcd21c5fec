"""QC fits the centre's own region: inflammatory diagnoses only, and few hospitals.

Records are SIMULATED: psoriasis, atopic dermatitis, urticaria and tinea, no malignant
code at all, with an expert reference column, dates and case-mix covariates.
"""

from __future__ import annotations

import json
import math
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinml.cli.qc import main
from skinml.qc.pipeline import QcOptions, analyse_records, run_records_qc
from skinml.qc.records import QcColumns, validate_records

INFLAMMATORY = ["psoriasis", "atopic dermatitis", "urticaria", "tinea"]


def inflammatory_records(n_hospitals: int = 5, n: int = 600, seed: int = 0) -> pd.DataFrame:
    """SIMULATED records of an inflammatory-disease region (no malignant diagnosis)."""
    rng = np.random.default_rng(seed)
    ref = rng.choice(INFLAMMATORY, n, p=[0.4, 0.3, 0.2, 0.1])
    called = np.where(rng.random(n) < 0.8, ref, rng.choice(INFLAMMATORY, n))
    return pd.DataFrame(
        {
            "hospital": rng.choice([f"SIM-H{i + 1}" for i in range(n_hospitals)], n),
            "case": [f"SIM-C{i}" for i in range(n)],
            "diagnosis": called,
            "reference": ref,
            "age": rng.integers(5, 90, n).astype(str),
            "sex": rng.choice(["female", "male"], n),
            "date": (
                pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
            ).strftime("%Y-%m-%d"),
        }
    )


def _finite_numbers(obj: object) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite_numbers(v) for v in obj)
    return True


@pytest.fixture(scope="module")
def inflammatory_run(tmp_path_factory) -> Path:
    """The CLI end to end on the inflammatory region, report included."""
    root = tmp_path_factory.mktemp("inflammatory")
    path = root / "records.csv"
    inflammatory_records().to_csv(path, index=False)
    code = main(["records", str(path), "--out", str(root / "qc"), "--quiet", "--n-bootstrap", "50"])
    assert code == 0
    return root / "qc"


def test_region_without_malignant_codes_runs_end_to_end(inflammatory_run: Path) -> None:
    text = (inflammatory_run / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    summary = json.loads(text)
    assert _finite_numbers(summary)
    assert summary["malignant_set"] == []
    line = summary["malignant_indicators"]
    assert line.startswith("Malignancy indicators") and "left out" in line
    assert "psoriasis" in line and "--malignant" in line
    assert line in summary["summary_lines"]
    funnels = pd.read_csv(inflammatory_run / "funnels.csv")
    assert not funnels["indicator"].str.contains("malignan").any()
    assert funnels["z"].notna().all() and np.isfinite(funnels["z"]).all()
    assert "malignant_sensitivity" not in pd.read_csv(inflammatory_run / "agreement_reference.csv")
    html = (inflammatory_run / "report.html").read_text(encoding="utf-8")
    assert "Malignancy indicators (malignant rate, malignancy sensitivity) are left out" in html
    assert ">nan<" not in html.lower()


def test_malignant_indicators_appear_when_the_region_has_malignant_codes(sim_region) -> None:
    raw = sim_region.records.drop(columns=["true_diagnosis", "date", "device"])
    rec = validate_records(raw.astype({"age": str}), QcColumns(covariates=()))
    res = analyse_records(rec, QcOptions(n_bootstrap=20, per_diagnosis=False, progress=False))
    # the simulator writes "melanoma"; QC counts it under the canonical code mel
    assert res.summary["malignant_set"] == ["bcc", "mel", "scc"]
    indicators = set(res.tables["funnels"]["indicator"])
    assert {"malignant diagnosis rate (crude)", "malignancy sensitivity vs AI"} <= indicators
    assert "malignant_sensitivity" in res.tables["agreement_ai"]


def test_few_hospitals_say_so_in_the_summary_and_on_every_flag(inflammatory_run: Path) -> None:
    summary = json.loads((inflammatory_run / "summary.json").read_text())
    assert summary["overdispersion_estimable"] is False
    caution = summary["summary_lines"][1]
    assert caution.startswith("CAUTION: only 5 hospitals") and "possibly inflated" in caution
    html = (inflammatory_run / "report.html").read_text(encoding="utf-8")
    verdict = html[html.index('<div class="verdict') : html.index("</div>")]
    assert "CAUTION: only 5 hospitals" in verdict  # in the summary box, not in small print
    flags = pd.read_csv(inflammatory_run / "flags.csv", keep_default_na=False)
    funnel = flags[flags["analysis"] != "change over time (CUSUM)"]
    assert len(funnel), "the simulated region should produce some funnel flag"
    marked = "possibly inflated (overdispersion not estimable with N < 10 units; here N = 5)"
    assert (funnel["caveat"] == marked).all()
    assert funnel["reason"].str.endswith(marked).all()


def test_ten_or_more_hospitals_carry_no_caveat(sim_region) -> None:
    raw = sim_region.records.drop(columns=["true_diagnosis", "date", "device"])
    rec = validate_records(raw.astype({"age": str}), QcColumns(covariates=()))
    res = analyse_records(rec, QcOptions(n_bootstrap=20, per_diagnosis=False, progress=False))
    assert res.summary["overdispersion_estimable"] is True
    assert not any(x.startswith("CAUTION") for x in res.summary["summary_lines"])
    assert len(res.flags) and (res.flags["caveat"] == "").all()


def test_per_diagnosis_funnels_are_plotted(inflammatory_run: Path) -> None:
    pngs = sorted(p.name for p in (inflammatory_run / "funnel_plots").glob("*.png"))
    assert pngs == [
        "diagnosis_atopic_dermatitis.png",
        "diagnosis_psoriasis.png",
        "diagnosis_tinea.png",
        "diagnosis_urticaria.png",
    ]
    for name in pngs:
        assert (inflammatory_run / "funnel_plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    funnels = pd.read_csv(inflammatory_run / "funnels.csv", keep_default_na=False)
    per_dx = funnels[funnels["diagnosis"] == "tinea"]["indicator"].unique()
    assert len(per_dx) == 4  # crude share, O/E given case mix, sensitivity, over-call
    html = (inflammatory_run / "report.html").read_text(encoding="utf-8")
    assert "Per-diagnosis funnels" in html and "tinea: 4 funnel(s)" in html


def test_per_hospital_pages_are_written_and_linked(inflammatory_run: Path) -> None:
    html = (inflammatory_run / "report.html").read_text(encoding="utf-8")
    flags = pd.read_csv(inflammatory_run / "flags.csv", keep_default_na=False)
    for i in range(1, 6):
        page = inflammatory_run / "units" / f"SIM-H{i}.html"
        assert f'href="units/SIM-H{i}.html"' in html
        text = page.read_text(encoding="utf-8")
        assert 'href="../report.html"' in text and "cases" in text
        assert "share diagnosed psoriasis (crude)" in text  # its indicators
        assert "CAUTION: only 5 hospitals" in text
        own = flags[flags["unit"] == f"SIM-H{i}"]
        assert f"{len(own)} flag(s)" in text if len(own) else "No flag" in text
        for reason in own["reason"]:
            assert html_escape(reason) in text


def test_report_pages_for_a_region_with_malignant_codes(sim_region, tmp_path: Path) -> None:
    small = sim_region.records[sim_region.records["hospital"].isin(["SIM-H03", "SIM-H05"])]
    raw = small.drop(columns=["date", "device", "true_diagnosis"]).astype({"age": str})
    rec = validate_records(raw, QcColumns(covariates=()))
    run_records_qc(rec, tmp_path, QcOptions(n_bootstrap=20, progress=False))
    page = (tmp_path / "units" / "SIM-H03.html").read_text(encoding="utf-8")
    assert "malignancy sensitivity vs AI" in page and "Agreement with the AI" in page
    assert (tmp_path / "funnel_plots" / "diagnosis_mel.png").is_file()


def test_qc_pages_fit_a_laptop_screen_in_chromium(inflammatory_run: Path, fits_laptop_screen):
    fits_laptop_screen(inflammatory_run / "report.html")
    unit_pages = sorted((inflammatory_run / "units").glob("*.html"))
    assert unit_pages
    fits_laptop_screen(unit_pages[0])
