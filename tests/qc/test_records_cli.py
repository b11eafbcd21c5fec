"""Bad input is listed, never lost; the CLI writes flags, report and CSVs (SIMULATED data)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from skinml.cli.qc import main
from skinml.errors import DataError
from skinml.qc.pipeline import QcOptions, analyse_records, run_records_qc
from skinml.qc.records import QcColumns, validate_records


def test_missing_column_names_it(tiny_records):
    with pytest.raises(DataError, match="'diagnosis'") as err:
        validate_records(tiny_records.drop(columns=["diagnosis"]), source="x.csv")
    assert "x.csv" in str(err.value) and "--diagnosis-column" in str(err.value)


def test_problem_rows_are_listed_with_row_and_column(tiny_records):
    rec = validate_records(
        tiny_records, hospitals=["A", "B", "C", "D"], vocabulary=["mel", "nv", "bcc"]
    )
    ex = rec.excluded
    by_row = {r: set(g["column"]) for r, g in ex.groupby("row")}
    assert by_row == {
        3: {"hospital"},
        4: {"date"},
        5: {"diagnosis"},
        9: {"hospital"},
        10: {"diagnosis"},
    }
    assert set(ex.loc[ex["row"] == 4, "excluded_from"]) == {"time trend (CUSUM)"}
    assert len(rec.frame) == 6  # rows 3, 5, 9, 10 excluded from all; row 4 kept without a date
    assert len(rec.frame) + ex.loc[ex["excluded_from"] == "all analyses", "row"].nunique() == 10
    assert rec.hospitals_without_records == ["D"]
    assert "not in the --hospitals list" in ex.loc[ex["row"] == 9, "reason"].iloc[0]


def test_duplicate_cases_are_listed():
    raw = pd.DataFrame(
        {"hospital": ["A", "A", "B"], "case": ["1", "1", "1"], "diagnosis": ["nv", "mel", "nv"]}
    )
    rec = validate_records(raw)
    assert list(rec.excluded["row"]) == [2] and len(rec.frame) == 2


def test_cli_records_end_to_end(records_csv: Path, tmp_path: Path, capsys):
    out = tmp_path / "qc"
    args = ["records", str(records_csv), "--out", str(out), "--covariates", "age,sex"]
    code = main([*args, "--n-bootstrap", "100", "--quiet", "--no-report", "--no-per-diagnosis"])
    assert code == 0
    assert "Outputs written to" in capsys.readouterr().out
    for name in (
        "flags.csv",
        "excluded_rows.csv",
        "funnels.csv",
        "mix_crude.csv",
        "mix_adjusted.csv",
        "agreement_ai.csv",
        "cusum_summary.csv",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    flags = pd.read_csv(out / "flags.csv")
    planted = flags[
        (flags["unit"] == "SIM-H03") & (flags["indicator"] == "malignancy sensitivity vs AI")
    ]
    assert list(planted["level"]) == ["alarm"] and planted["effect"].iloc[0] < -0.1
    funnels = pd.read_csv(out / "funnels.csv")
    for _, f in funnels.groupby("indicator"):
        assert list(f["unit"]) == sorted(f["unit"])  # by name, never by performance
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records_used"] == len(pd.read_csv(records_csv))


def test_report_is_self_contained_and_labelled(sim_region, tmp_path: Path):
    small = sim_region.records[
        sim_region.records["hospital"].isin(["SIM-H03", "SIM-H05", "SIM-H06"])
    ]
    raw = small.drop(columns=["date", "device", "true_diagnosis"]).astype({"age": str})
    rec = validate_records(raw, QcColumns(covariates=("age",)))
    opts = QcOptions(n_bootstrap=50, per_diagnosis=False, progress=False, simulated=True)
    run_records_qc(rec, tmp_path, opts)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "SIMULATED" in html and "data:image/png;base64" in html and "never ranked" in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")


def test_cli_bad_input_exit_code_and_message(tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("site,dx\nA,nv\n", encoding="utf-8")
    assert main(["records", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "'hospital'" in err


def test_predictions_csv_is_joined_and_missing_ones_listed(tmp_path: Path):
    raw = pd.DataFrame(
        {
            "hospital": ["A"] * 6 + ["B"] * 6,
            "image": [f"img/{i}.jpg" for i in range(12)],
            "diagnosis": ["nv", "mel"] * 6,
        }
    )
    pred = pd.DataFrame(
        {
            "input": [f"/data/img/{i}.jpg" for i in range(11)],
            "file": [f"/data/img/{i}.jpg" for i in range(11)],
            "status": ["ok"] * 10 + ["error"],
            "error": [""] * 10 + ["corrupt"],
            "predicted_class": ["nv", "mel"] * 5 + [""],
            "p_mel": [0.1, 0.9] * 5 + [None],
            "p_nv": [0.9, 0.1] * 5 + [None],
            "ood_flag": [False] * 9 + [True, None],
        }
    )
    pred_path = tmp_path / "predictions.csv"
    pred.to_csv(pred_path, index=False)
    rec = validate_records(raw, QcColumns(covariates=()))
    res = analyse_records(rec, QcOptions(predictions=pred_path, n_bootstrap=50, progress=False))
    missing = res.excluded[res.excluded["excluded_from"] == "AI comparisons"]
    assert sorted(missing["row"]) == [11, 12]
    ai = res.tables["agreement_ai"].set_index("hospital")
    assert ai.loc["A", "n"] == 6 and ai.loc["B", "n"] == 4
    mb = res.tables["model_behaviour_hospital"].set_index("hospital")
    assert mb.loc["B", "ood_count"] == 1 and mb.loc["A", "mean_confidence"] == pytest.approx(0.9)
