"""Agreement, diagnosis mix with case-mix adjustment, and CUSUM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinml.qc.agreement import hospital_agreement, kappa_with_ci, shared_case_alpha
from skinml.qc.cusum import cusum_path, monthly_cusum
from skinml.qc.mix import (
    adjusted_mix,
    adjusted_residuals,
    casemix_expected,
    contingency,
    diagnosis_mix,
)
from skinml.stats import cohen_kappa


def test_table_kappa_matches_core_cohen_kappa(rng):
    a = rng.choice(["mel", "nv", "bcc"], 400, p=[0.2, 0.6, 0.2])
    b = np.where(rng.random(400) < 0.75, a, rng.choice(["mel", "nv", "bcc"], 400))
    labels = ["bcc", "mel", "nv"]
    table = pd.crosstab(
        pd.Categorical(b, labels), pd.Categorical(a, labels), dropna=False
    ).to_numpy()
    value, lo, hi = kappa_with_ci(table, n_bootstrap=1000, seed=1)
    core = cohen_kappa(a, b, n_bootstrap=200, seed=1)
    assert value == pytest.approx(core.value, abs=1e-12)
    assert lo == pytest.approx(core.ci_low, abs=0.03) and hi == pytest.approx(
        core.ci_high, abs=0.03
    )


def test_hospital_agreement_sensitivity_specificity():
    frame = pd.DataFrame(
        {
            "hospital": ["A"] * 10,
            "diagnosis": ["mel", "mel", "nv", "nv", "nv", "nv", "nv", "nv", "nv", "mel"],
            "reference": ["mel", "mel", "mel", "mel", "nv", "nv", "nv", "nv", "nv", "nv"],
        }
    )
    summary, per_dx = hospital_agreement(frame, "reference", n_bootstrap=200)
    row = summary.iloc[0]
    assert row["malignant_sensitivity"] == pytest.approx(0.5)
    assert row["malignant_specificity"] == pytest.approx(5 / 6)
    assert row["agreement"] == pytest.approx(0.7)
    assert row["sensitivity_ci_low"] < 0.5 < row["sensitivity_ci_high"]
    mel = per_dx.set_index("diagnosis").loc["mel"]
    assert (mel["ref_k"], mel["called_k_when_ref_k"], mel["called_k_when_ref_not_k"]) == (4, 2, 1)


def test_shared_case_alpha_and_majority_agreement():
    cases = [f"c{i}" for i in range(20)]
    dx = ["mel" if i % 3 == 0 else "nv" for i in range(20)]
    rows = [
        {"hospital": h, "case": c, "diagnosis": d}
        for h in "ABC"
        for c, d in zip(cases, dx, strict=True)
    ]
    rows[40]["diagnosis"] = "bcc" if rows[40]["diagnosis"] == "mel" else "mel"  # C disagrees once
    overall, per_h = shared_case_alpha(pd.DataFrame(rows), n_bootstrap=50)
    assert 0.85 < overall["krippendorff_alpha"] < 1.0
    assert overall["shared_cases"] == 20
    assert per_h.set_index("hospital").loc["C", "agreement_with_others_majority"] == pytest.approx(
        0.95
    )


def test_adjusted_residuals_zero_under_independence():
    counts = pd.DataFrame([[10, 20], [20, 40]], index=["A", "B"], columns=["x", "y"])
    assert np.allclose(adjusted_residuals(counts).to_numpy(), 0)


def test_case_mix_explains_a_confounded_difference(rng):
    # SIMULATED: melanoma depends on age only; hospital B sees older patients.
    n = 3000
    hospital = np.where(np.arange(n) < n // 2, "A", "B")
    age = (
        np.where(hospital == "A", rng.normal(40, 10, n), rng.normal(70, 10, n)).clip(1, 99).round()
    )
    p_mel = 1 / (1 + np.exp(-(-4 + 0.05 * (age - 20))))
    dx = np.where(rng.random(n) < p_mel, "mel", "nv")
    frame = pd.DataFrame({"hospital": hospital, "diagnosis": dx, "age": age.astype(str)})
    _, _, overall = diagnosis_mix(contingency(frame))
    assert overall["p_value"] < 1e-6  # crude: very different
    expected = casemix_expected(frame, ["age"])
    cells, adj = adjusted_mix(frame, expected)
    mel = cells[cells["diagnosis"] == "mel"].set_index("hospital")
    assert mel["o_e_ci_low"].max() < 1 < mel["o_e_ci_high"].min()  # adjusted: consistent with 1
    assert adj["p_value_adjusted"].min() > 0.001


def test_cusum_path_matches_loop(rng):
    w = rng.normal(-0.1, 1, 50)
    s, loop = cusum_path(w), []
    acc = 0.0
    for x in w:
        acc = max(0.0, acc + x)
        loop.append(acc)
    assert np.allclose(s, loop)


def test_monthly_cusum_detects_a_step_change(rng):
    # SIMULATED: hospital X doubles its malignant calls after 12 months; Y stays in control.
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    rows = []
    for h in ("X", "Y"):
        for i, m in enumerate(months):
            p = 0.3 if (h == "X" and i >= 12) else 0.1
            y = rng.random(80) < p
            rows.append(pd.DataFrame({"hospital": h, "date": m, "y": y}))
    frame = pd.concat(rows, ignore_index=True)
    summary, paths = monthly_cusum(
        frame,
        frame["y"],
        pd.Series(0.1, index=frame.index),
        indicator="malignant",
        odds_ratios=(2.0,),
        n_sim=500,
    )
    s = summary.set_index("hospital")
    assert s.loc["X", "signal"] and not s.loc["Y", "signal"]
    assert s.loc["X", "first_signal_month"] >= "2025-01"
    assert set(paths["hospital"]) == {"X", "Y"}
