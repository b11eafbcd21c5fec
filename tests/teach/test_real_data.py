"""Real data: a teaching set from the HAM10000 test split scored for SIMULATED trainees,
and inter-rater agreement on the real ENHANCE crowd and student annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinml.teach.cohort import cohort_agreement
from skinml.teach.pipeline import score_session
from skinml.teach.reference import read_reference
from skinml.teach.simulate import simulate_answers

pytestmark = pytest.mark.real_data


def test_ham_teaching_set_is_stratified_and_real(ham_set) -> None:
    ts, _, manifest = ham_set
    ref = ts.reference
    assert len(ref) == 40
    counts = ref["diagnosis"].value_counts()
    assert set(counts.index) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert counts.max() - counts.min() <= 1  # balanced over the 7 diagnoses
    assert set(ref["source_image"]) <= set(manifest.frame["image"])
    assert ref["lesion_id"].is_unique
    # a 0.3 hard fraction of 5-6 cases per diagnosis = 2 hard per diagnosis
    assert (ref["difficulty"] == "hard").sum() == 14


def test_simulated_error_patterns_are_recovered(ham_set, tmp_path: Path) -> None:
    ts, _, _ = ham_set
    ref = read_reference(ts.reference_csv)
    args = (ref.cases, ref.diagnosis, ref.classes)
    sheets = [
        simulate_answers(
            *args, accuracy=1.0, confusions={"mel": "nv"}, seed=1, trainee="simulated_mel_as_nv"
        ),
        simulate_answers(*args, accuracy=0.9, seed=2, trainee="simulated_90pct"),
        simulate_answers(
            *args, accuracy=0.5, unanswered=0.2, seed=3, trainee="simulated_50pct_gaps"
        ),
    ]
    answers = tmp_path / "answers_simulated.csv"
    pd.concat(sheets).to_csv(answers, index=False)
    out = score_session(
        ts.reference_csv,
        [answers],
        tmp_path / "scores",
        n_bootstrap=300,
        reports="none",
        progress=False,
    )
    summary = pd.read_csv(out.summary_csv).set_index("trainee")
    n_mel = int((ref.frame["diagnosis"] == "mel").sum())
    mel_as_nv = summary.loc["simulated_mel_as_nv"]
    assert mel_as_nv["sensitivity_mel"] == 0.0
    assert mel_as_nv["n_missed_malignant"] == n_mel
    assert mel_as_nv["accuracy"] == pytest.approx((40 - n_mel) / 40)
    assert mel_as_nv["sensitivity_nv"] == 1.0
    assert mel_as_nv["specificity_nv"] == pytest.approx(1 - n_mel / (40 - 6))
    missed = pd.read_csv(out.missed_csv)
    mine = missed[missed["trainee"] == "simulated_mel_as_nv"]
    assert set(mine["reference"]) == {"mel"} and set(mine["answer"]) == {"nv"}
    good = summary.loc["simulated_90pct"]
    assert good["accuracy_ci_low"] <= 0.9 <= good["accuracy_ci_high"]
    assert good["kappa"] > 0.7 and good["kappa_ci_low"] < good["kappa"] < good["kappa_ci_high"]
    gaps = summary.loc["simulated_50pct_gaps"]
    assert gaps["n_unanswered"] > 0
    assert gaps["n_answered"] + gaps["n_unanswered"] == 40  # nothing dropped
    # the AI (simulated, 75%) is scored on the same 40 cases and compared pairwise
    assert summary["ai_accuracy"].nunique() == 1
    assert 0.4 < summary["ai_accuracy"].iloc[0] < 1.0
    # three trainees: too few for a percentile (shown from five on)
    assert summary["cohort_percentile"].isna().all()
    assert summary["mcnemar_p_vs_ai"].between(0, 1).all()


def _enhance(shared_data: Path) -> Path:
    base = shared_data / "enhance_abc_annotations"
    if not base.exists():
        pytest.skip(f"real data {base} is absent")
    return base


def test_enhance_crowd_agreement_is_low(shared_data: Path) -> None:
    """Raumanns et al. 2021 report weak agreement between non-expert raters; so do we."""
    base = _enhance(shared_data)
    crowd = pd.read_csv(base / "crowd" / "asymmetry.csv")
    codes = crowd[["i", "ii", "iii"]].to_numpy().T  # 3 MTurk workers x 1250 ISIC images
    ag = cohort_agreement(codes)
    assert ag.n_raters == 3 and ag.n_cases == 1250 and ag.n_complete_cases == 1250
    assert 0.0 < ag.fleiss_kappa < 0.4  # slight-to-fair agreement
    assert ag.krippendorff_alpha == pytest.approx(ag.fleiss_kappa, abs=0.01)  # large n
    border = pd.read_csv(base / "crowd" / "border.csv")
    assert abs(cohort_agreement(border[["i", "ii", "iii"]].to_numpy().T).fleiss_kappa) < 0.1


def test_enhance_students_with_gaps_use_krippendorff(shared_data: Path) -> None:
    """Student groups rated different images: a raters x images matrix full of gaps."""
    base = _enhance(shared_data)
    blocks = []
    for f in sorted((base / "student" / "2017-2018").glob("group0[1236].csv")):
        g = pd.read_csv(f, sep=";", encoding="utf-8-sig")
        cols = [c for c in g.columns if c.lower().startswith("asymmetry")][:3]
        blocks.append(g.set_index("ID")[cols].rename(columns=lambda c, f=f: f"{f.stem}_{c}"))
    wide = pd.concat(blocks, axis=1)  # images x raters, NaN where a rater did not see it
    codes = wide.T.to_numpy()
    codes = np.where(np.isnan(codes), -1, codes).astype(int)
    ag = cohort_agreement(codes)
    assert ag.n_raters == 12 and ag.n_complete_cases == 0  # no image seen by every group
    assert np.isnan(ag.fleiss_kappa)
    assert 0.0 < ag.krippendorff_alpha < 0.6


def test_vectorised_tables_match_per_sheet(ham_set, tmp_path: Path) -> None:
    ts, _, _ = ham_set
    ref = read_reference(ts.reference_csv)
    sheets = [
        simulate_answers(
            ref.cases,
            ref.diagnosis,
            ref.classes,
            accuracy=0.6,
            seed=s,
            trainee=f"simulated_{s}",
            unanswered=0.1,
        )
        for s in range(4)
    ]
    answers = tmp_path / "answers_simulated.csv"
    pd.concat(sheets).to_csv(answers, index=False)
    res = score_session(
        ts.reference_csv, [answers], tmp_path / "s", n_bootstrap=0, reports="none", progress=False
    ).scores
    every = res.per_diagnosis()
    missed = res.missed()
    for i in range(4):
        one = res.per_diagnosis(i)
        mine = every[every["trainee"] == f"simulated_{i}"].drop(columns=["trainee", "session"])
        pd.testing.assert_frame_equal(one, mine.reset_index(drop=True))
        assert len(res.missed(i)) == (missed["trainee"] == f"simulated_{i}").sum()
