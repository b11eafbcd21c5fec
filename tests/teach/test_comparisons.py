"""Comparisons that fit the set: published levels only for the same classes, and no cohort
percentile under five trainees."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from skinml.teach.benchmarks import comparable_levels
from skinml.teach.pipeline import score_session
from skinml.teach.reference import read_reference
from skinml.teach.simulate import simulate_answers


def test_comparable_levels_need_the_same_classes() -> None:
    ham = comparable_levels(("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"))
    assert ham.dermachallenge and not ham.todiv
    assert "9-class test" in ham.reason
    three = comparable_levels(("nv", "mel", "bkl"))
    assert not three.any
    assert "this set asks for 3 classes (bkl, mel, nv)" in three.reason


def _cohort(reference: Path, n: int, tmp_path: Path) -> Path:
    ref = read_reference(reference)
    sheets = [
        simulate_answers(
            ref.cases,
            ref.diagnosis,
            ref.classes,
            accuracy=0.4 + 0.1 * k,
            seed=k,
            trainee=f"simulated_{k}",
        )
        for k in range(n)
    ]
    path = tmp_path / f"answers_simulated_{n}.csv"
    pd.concat(sheets).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("n", [4, 5])
def test_percentiles_from_five_trainees(ai_quiz_set, tmp_path: Path, n: int) -> None:
    ts, _, _ = ai_quiz_set
    out = score_session(
        ts.reference_csv,
        [_cohort(ts.reference_csv, n, tmp_path)],
        tmp_path / "r",
        ai=None,
        n_bootstrap=0,
        progress=False,
    )
    summary = pd.read_csv(out.summary_csv)
    page = out.reports["simulated_0|"].read_text(encoding="utf-8")
    if n < 5:
        assert summary["cohort_percentile"].isna().all()
        assert "No percentile: with 4 trainees" in page and "Percentile in this cohort" not in page
        assert "You scored better than" not in page
    else:
        assert summary["cohort_percentile"].notna().all()
        assert "Percentile in this cohort" in page and "You scored better than" in page


def test_other_classes_get_no_published_levels(ai_quiz_set, tmp_path: Path) -> None:
    ts, _, _ = ai_quiz_set
    out = score_session(
        ts.reference_csv,
        [_cohort(ts.reference_csv, 2, tmp_path)],
        tmp_path / "r",
        n_bootstrap=0,
        progress=False,
    )
    page = out.reports["simulated_0|"].read_text(encoding="utf-8")
    assert ">Against published reference levels<" in page
    assert "Not shown: DermaChallenge (Rinner 2020) is a 7-class test" in page
    assert "in DermaChallenge (single non-experts" not in page  # no placement sentence
    assert "TODIV reader study your score would sit" not in page


def test_same_classes_get_dermachallenge(small_reference: Path, tmp_path: Path) -> None:
    # no teaching_set.json: a HAM10000-coded key gets the 7 HAM10000 classes
    out = score_session(
        small_reference,
        [_cohort(small_reference, 1, tmp_path)],
        tmp_path / "r",
        n_bootstrap=0,
        progress=False,
    )
    page = next(iter(out.reports.values())).read_text(encoding="utf-8")
    assert "in DermaChallenge (single non-experts 58.6%, experts 68.4%; Rinner 2020)" in page
    assert "Why these: this set asks for DermaChallenge&#x27;s 7 categories" in page
