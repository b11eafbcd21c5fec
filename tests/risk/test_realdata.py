"""Real-data checks: GWAS Catalog weights, UCI Dermatology, PAD-UFES-20 missingness leak."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.risk.conftest import shared_dataset

pytestmark = pytest.mark.real_data


def test_builtin_weights_table_is_rebuilt_from_the_catalog():
    from skinml.risk.gwas import build_weights_table, read_weights_table, weights_version

    built, dropped = build_weights_table(shared_dataset("psoriasis_gwas_catalog"))
    shipped = read_weights_table()
    assert weights_version(built) == weights_version(shipped)
    assert "rs10484554" in set(built.snp) and "rs12191877" not in set(
        built.snp
    )  # same HLA-C locus, pruned
    assert (built.weight > 0).all() and built.snp.is_unique and len(built) == 43
    hla = built.set_index("snp").loc["rs10484554"]
    assert (hla.effect_allele, round(float(np.exp(hla.weight)), 2), hla.effect_allele_freq) == (
        "T",
        3.30,
        0.15,
    )
    assert dropped.reason.str.contains("same locus").sum() >= 10


def test_uci_psoriasis_vs_rest_and_six_class_accuracy():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from skinml.risk.dataset import feature_means, impute
    from skinml.risk.realdata import load_uci_dermatology_dataset, uci_sixclass_cv_accuracy

    folder = shared_dataset("uci_dermatology")
    ds = load_uci_dermatology_dataset(folder)
    assert ds.X.shape == (366, 34) and ds.y.sum() == 112
    assert ds.reports["missingness"] == {"age_missing_question_mark": 8, "age_zero_set_missing": 1}
    X = impute(ds.X, feature_means(ds.X))
    p = cross_val_predict(
        LogisticRegression(max_iter=2000),
        X,
        ds.y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )[:, 1]
    assert roc_auc_score(ds.y, p) > 0.98
    acc = uci_sixclass_cv_accuracy(folder)
    assert acc["logistic_regression"]["accuracy"] > 0.95  # published 10-fold range 0.967-0.989


def test_pad_ufes_missingness_leak_is_measured_and_guarded():
    from skinml.risk.realdata import load_pad_ufes_dataset

    folder = shared_dataset("pad_ufes_20_metadata")
    guarded = load_pad_ufes_dataset(folder)
    leak = guarded.reports["leakage"]
    assert leak["cancer_among_missing"] == 0 and leak["rows_missing_survey"] > 500
    assert leak["auc_of_missing_indicator"] > 0.65  # missingness alone "predicts" cancer
    assert not np.isnan(guarded.X[["smoke", "drink"]].to_numpy()).any()
    assert leak["excluded_rows"] == leak["rows_missing_survey"]
    leaky = load_pad_ufes_dataset(folder, missing_policy="keep")
    assert "survey_missing" in leaky.X.columns and len(leaky.y) == leak["rows"]
    assert len(set(guarded.groups)) < len(
        guarded.groups
    )  # lesions grouped by patient for splitting


def test_simulate_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "skinml.risk.simulate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "SIMULATED" in out.stdout and "data.n_subjects" in out.stdout
