"""The real Hydra config, shrunk: simulate, fit, calibrate, export, predict; assert outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.risk.conftest import compose_risk


def test_run_writes_metrics_report_and_a_verified_model(logistic_run):
    run, doc, _ = logistic_run
    m = json.loads((run / "metrics.json").read_text())["metrics_test"]
    assert doc["simulated"] is True
    assert (
        0.65 < m["auc"]["value"] < 0.95
        and m["auc"]["ci_low"] < m["auc"]["value"] < m["auc"]["ci_high"]
    )
    # GRS + survey logistic has the oracle's functional form: close to the oracle on the same split
    assert m["auc_ratio_to_oracle"] > 0.9
    assert m["onnx_verification"]["max_abs_diff"] <= 1e-6
    counts = doc["reports"]["snp_match_counts"]
    assert (
        counts["flipped"] >= 1 and counts["ambiguous_kept"] >= 1 and counts["allele_mismatch"] == 0
    )
    html = (run / "report.html").read_text()
    assert (
        "SIMULATED DATA" in html
        and html.count("data:image/png;base64") == 4
        and "<script" not in html
    )
    assert (run / "risk_model.onnx.sha256").read_text().split()[1] == "risk_model.onnx"
    assert "SIMULATED" in (run / "simulated_cohort" / "SIMULATED_README.txt").read_text()


def test_model_file_carries_the_metadata_the_predictor_needs(logistic_run):
    from skinml.modelfile import read_metadata, verify_sidecar

    run, _, _ = logistic_run
    meta = read_metadata(run / "risk_model.onnx")
    assert verify_sidecar(run / "risk_model.onnx") is True
    assert (
        meta.task == "tabular_risk"
        and meta.calibration.method == "platt"
        and meta.calibration.applied_in_graph
    )
    ex = meta.extra
    assert ex["feature_names"][: len(ex["snp_features"])] == ex["snp_features"]
    assert "rs10484554" in ex["snp_features"] and ex["weights_version"].startswith("sha256:")
    assert ex["contributions"]["method"] == "linear" and ex["simulated_training_data"] is True
    assert meta.threshold("high_risk") is not None and len(ex["risk_categories"]["cutoffs"]) == 3
    assert meta.metrics["auc"].ci_low is not None and "SIMULATED" in meta.intended_use


def test_mlflow_run_has_params_metrics_and_artifacts(logistic_run):
    import mlflow

    _, doc, cfg = logistic_run
    mlflow.set_tracking_uri(cfg.tracking.tracking_uri)
    r = mlflow.get_run(doc["mlflow_run_id"])
    assert r.data.params["model.name"] == "grs_survey_logistic"
    assert r.data.params["data.n_subjects"] == "3000" and r.data.params["task_name"] == "risk"
    assert abs(r.data.metrics["test_auc"] - doc["metrics_test"]["auc"]["value"]) < 1e-12
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(r.info.run_id)}
    assert {"metrics.json", "model", "plots", "report", "config"} <= arts
    # intervals live in a table, not in metric keys; the run is named and described
    assert not any(k.endswith(("_ci_low", "_ci_high")) for k in r.data.metrics)
    table = mlflow.load_table("evaluation/metrics_with_ci.json", run_ids=[r.info.run_id])
    auc = table[table["metric"] == "test_auc"].iloc[0]
    assert auc["ci_low"] == pytest.approx(doc["metrics_test"]["auc"]["ci_low"])
    sens = table[table["metric"] == "test_sensitivity_at_threshold"].iloc[0]
    assert sens["interval"] == "wilson" and sens["denominator"] > 0
    assert r.info.run_name == f"{cfg.data.name}-grs_survey_logistic-seed{cfg.seed}"
    assert "Test AUC" in r.data.tags["mlflow.note.content"]
    (train,) = r.inputs.dataset_inputs
    assert train.dataset.digest == doc["reports"]["data_fingerprint"].removeprefix("sha256:")


def test_risk_warnings_call_a_chance_model_and_a_useless_threshold_so():
    from skinml.risk.run import risk_warnings

    metrics = {
        "auc": {"value": 0.55, "ci_low": 0.46, "ci_high": 0.63},
        "n": 300,
        "threshold": {
            "threshold": 0.01,
            "chosen_on": "out-of-fold",
            "test": {"true_positives": 12, "n_cases": 12, "true_negatives": 0, "n_controls": 288},
        },
    }
    warnings = risk_warnings(metrics)
    assert warnings[0].startswith("not better than chance on this test set: AUC 0.55, 95% CI")
    assert "high-risk threshold is useless" in warnings[1]
    assert "flags every one of the 288 controls as high risk" in warnings[1]
    metrics["auc"] = {"value": 0.75, "ci_low": 0.7, "ci_high": 0.8}
    metrics["threshold"]["test"]["true_negatives"] = 200
    assert risk_warnings(metrics) == []


def test_predictor_on_vcf_and_survey_matches_the_estimator(logistic_run, tmp_path: Path):
    import onnxruntime as ort

    from skinml.modelfile import read_metadata
    from skinml.predict.tabular import run_tabular_predictions

    run, _, _ = logistic_run
    model = run / "risk_model.onnx"
    sess = ort.InferenceSession(str(model))
    cohort = run / "simulated_cohort"
    out = run_tabular_predictions(
        model,
        read_metadata(model, sess),
        sess,
        cohort / "simulated_genotypes.vcf.gz",
        tmp_path / "risk.csv",
        survey=cohort / "simulated_survey.csv",
    )
    got = pd.read_csv(out)
    assert len(got) == 3000 and (got.status == "ok").all()
    ref = pd.read_csv(run / "test_predictions.csv").merge(got, on="sample_id")
    assert len(ref) == 750
    np.testing.assert_allclose(ref["risk_x"], ref["risk_y"], atol=1e-8)
    assert (ref["category"] == ref["risk_category"]).all()
    assert got.top_factors.str.contains("polygenic risk score").any()


def test_predictor_turns_bad_rows_into_error_rows(logistic_run, tmp_path: Path):
    import onnxruntime as ort

    from skinml.modelfile import read_metadata
    from skinml.predict.tabular import run_tabular_predictions

    run, _, _ = logistic_run
    model = run / "risk_model.onnx"
    sess = ort.InferenceSession(str(model))
    survey = pd.read_csv(run / "simulated_cohort" / "simulated_survey.csv", dtype=str)
    survey.loc[0, "bmi"] = "heavy"
    survey.loc[1, "smoking"] = "sometimes"
    survey.loc[2, "age"] = "150"
    gone = survey.loc[3, "sample_id"]
    survey = pd.concat(
        [
            survey.drop(index=3),
            pd.DataFrame([{**survey.iloc[5].to_dict(), "sample_id": "SIMnot_in_vcf"}]),
        ]
    )
    bad = tmp_path / "survey_bad.csv"
    survey.to_csv(bad, index=False)
    out = run_tabular_predictions(
        model,
        read_metadata(model, sess),
        sess,
        run / "simulated_cohort" / "simulated_genotypes.vcf.gz",
        tmp_path / "risk.csv",
        survey=bad,
    )
    got = pd.read_csv(out).set_index("sample_id")
    assert len(got) == 3001  # every VCF sample + the survey-only sample: nothing dropped
    err = got[got.status == "error"]["error"]
    assert len(err) == 5
    assert "'heavy' is not a number" in err.iloc[0] and "survey_bad.csv" in err.iloc[0]
    assert "unknown category 'sometimes'" in err.iloc[1] and "out of range" in err.iloc[2]
    assert (
        "no survey answers" in got.loc[gone, "error"]
        and "not in the VCF" in got.loc["SIMnot_in_vcf", "error"]
    )


def test_patient_table_input_and_no_heavy_imports(logistic_run, tmp_path: Path):
    """A CSV patient table (survey + dosage columns) scores with numpy/onnxruntime only."""
    run, _, _ = logistic_run
    from skinml.risk.genotypes import read_vcf

    g = read_vcf(run / "simulated_cohort" / "simulated_genotypes.vcf.gz")
    dos = pd.DataFrame(g.dosages[:20], columns=[f"{v.key}_{v.counted}" for v in g.variants])
    survey = pd.read_csv(run / "simulated_cohort" / "simulated_survey.csv").head(20)
    table = pd.concat([survey.drop(columns="psoriasis"), dos], axis=1)
    table.to_csv(tmp_path / "patients.csv", index=False)
    code = f"""
import sys
for m in ("torch", "lightgbm", "sklearn", "pandas", "cyvcf2", "scipy", "hydra", "mlflow"):
    sys.modules[m] = None  # importing any of these now fails
import onnxruntime as ort
from skinml.modelfile import read_metadata
from skinml.predict.tabular import run_tabular_predictions
s = ort.InferenceSession({str(run / "risk_model.onnx")!r})
m = read_metadata({str(run / "risk_model.onnx")!r}, s)
run_tabular_predictions({str(run / "risk_model.onnx")!r}, m, s,
                        {str(tmp_path / "patients.csv")!r}, {str(tmp_path / "out.csv")!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    got = pd.read_csv(tmp_path / "out.csv")
    ref = pd.read_csv(run / "test_predictions.csv")
    both = got.merge(ref, on="sample_id", suffixes=("", "_ref"))
    assert (got.status == "ok").all() and len(got) == 20
    if len(both):
        np.testing.assert_allclose(both["risk"], both["risk_ref"], atol=1e-8)


def test_lightgbm_run_exports_within_tolerance(tmp_path: Path):
    from skinml.cli.risk import run_from_config

    cfg = compose_risk(
        [
            "risk/model=lightgbm",
            "model.param_grid=null",
            "model.estimator.n_estimators=60",
            "model.estimator.n_jobs=1",
            "calibration.method=isotonic",
            "cv.outer_folds=0",
        ],
        tmp_path,
    )
    doc = run_from_config(cfg, tmp_path / "run")
    m = doc["metrics_test"]
    assert m["onnx_verification"]["max_abs_diff"] <= 1e-5
    assert 0.6 < m["auc"]["value"] < 0.95
    from skinml.modelfile import read_metadata

    meta = read_metadata(tmp_path / "run" / "risk_model.onnx")
    assert (
        meta.extra["contributions"]["method"] == "none_in_predictor"
        and meta.calibration.method == "isotonic"
    )


def test_simulate_mode_writes_labelled_files(tmp_path: Path):
    from skinml.cli.risk import run_from_config
    from skinml.risk.genotypes import read_vcf

    cfg = compose_risk(["mode=simulate", "data.n_subjects=400", "data.n_null_snps=7"], tmp_path)
    doc = run_from_config(cfg, tmp_path / "run")
    files = {k: Path(v) for k, v in doc["files"].items()}
    assert all("simulated" in p.name for p in files.values())
    with open(files["genotypes"], "rb") as fh:
        assert fh.read(4) == b"\x1f\x8b\x08\x04"  # bgzip (BGZF extra field)
    g = read_vcf(files["genotypes"])
    assert len(g.samples) == 400 and len(g.variants) == 43 + 7
    truth = pd.read_csv(files["truth"])
    assert (
        truth["true_risk_simulated"].between(0, 1).all()
        and abs(truth["true_risk_simulated"].mean() - 0.05) < 0.005
    )


def test_predict_cli_scores_vcf_with_survey(logistic_run, tmp_path: Path):
    import subprocess
    import sys

    run, _, _ = logistic_run
    cohort = run / "simulated_cohort"
    out = tmp_path / "risk_cli.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "skinml.predict",
            run / "risk_model.onnx",
            cohort / "simulated_genotypes.vcf.gz",
            "--survey",
            cohort / "simulated_survey.csv",
            "-o",
            out,
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = pd.read_csv(out)
    assert len(got) == 3000 and (got.status == "ok").all()


def test_risk_report_fits_a_laptop_screen_in_chromium(logistic_run, fits_laptop_screen):
    run, _, _ = logistic_run
    assert fits_laptop_screen(run / "report.html").n_images == 4
