"""Subgroup table: right n per level, small groups marked (not hidden), age bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinml.errors import DataError
from skinml.evaluation import AGE_BANDS, age_band, balanced_accuracy, subgroup_table


def test_age_band_edges_and_unknowns():
    ages = pd.Series(
        [0, 29.9, 30, 44.9, 45, 59, 60, 74, 75, 99, np.nan, -3, "abc", None], index=range(100, 114)
    )
    bands = age_band(ages)
    assert list(bands.index) == list(range(100, 114))
    assert bands.tolist() == [
        "<30",
        "<30",
        "30-44",
        "30-44",
        "45-59",
        "45-59",
        "60-74",
        "60-74",
        "75+",
        "75+",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert list(bands.cat.categories) == list(AGE_BANDS) and bands.cat.ordered


@pytest.fixture
def case(rng):
    n = 400
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    meta = pd.DataFrame(
        {
            "site": rng.choice(["hospital_a", "hospital_b", "tiny_clinic"], n, p=[0.6, 0.36, 0.04]),
            "sex": rng.choice(["female", "male", None], n),
            "age": rng.choice([np.nan, 20, 35, 50, 65, 80], n),
        },
        index=rng.permutation(n),  # a non-default index must not break alignment
    )
    return y, probs, meta


def test_subgroup_table_counts_and_small_groups(case):
    y, probs, meta = case
    table = subgroup_table(y, probs, ["mel", "nv", "bkl"], ["mel"], meta, min_n=30, n_bootstrap=100)
    assert table.attrs["missing_columns"] == ["localization", "device"]
    assert table.iloc[0][["column", "level", "n"]].tolist() == ["all", "all", 400]
    for column in ("site", "sex", "age_band"):
        assert table.loc[table["column"] == column, "n"].sum() == 400
    site = table[table["column"] == "site"].set_index("level")
    expected = meta["site"].value_counts()
    assert site["n"].to_dict() == expected.to_dict()
    tiny = site.loc["tiny_clinic"]
    assert tiny["n"] < 30 and bool(tiny["small"])
    assert "too few cases" in tiny["note"] and np.isnan(tiny["balanced_accuracy_ci_low"])
    assert np.isfinite(tiny["accuracy"])  # reported, not hidden
    # a proportion keeps its Wilson interval however few the cases
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(tiny["accuracy_successes"], tiny["n"], method="wilson")
    assert (tiny["accuracy_ci_low"], tiny["accuracy_ci_high"]) == pytest.approx((lo, hi))
    assert tiny["accuracy"] == pytest.approx(tiny["accuracy_successes"] / tiny["n"])
    big = site.loc["hospital_a"]
    assert not big["small"] and big["accuracy_ci_low"] <= big["accuracy"] <= big["accuracy_ci_high"]
    mask = (meta["site"] == "hospital_a").to_numpy()
    assert big["balanced_accuracy"] == pytest.approx(
        balanced_accuracy(y[mask], probs[mask].argmax(axis=1))
    )
    sex = table[table["column"] == "sex"].set_index("level")
    assert sex.loc["unknown", "n"] == meta["sex"].isna().sum()
    ages = table[table["column"] == "age_band"]["level"].tolist()
    assert ages == [b for b in AGE_BANDS if b in set(age_band(meta["age"]))]  # band order kept


def test_subgroup_without_malignant_cases_says_so(case):
    y, probs, meta = case
    meta = meta.assign(site=np.where(y == 0, "melanoma_clinic", "benign_clinic"))
    table = subgroup_table(
        y, probs, ["mel", "nv", "bkl"], ["mel"], meta, columns=["site"], n_bootstrap=50
    )
    benign = table[table["level"] == "benign_clinic"].iloc[0]
    assert benign["n_malignant"] == 0 and np.isnan(benign["malignant_sensitivity"])
    assert "no malignant cases" in benign["note"]
    mel = table[table["level"] == "melanoma_clinic"].iloc[0]
    assert "no benign cases" in mel["note"] and np.isfinite(mel["malignant_sensitivity"])


def test_subgroup_table_groups_and_threshold(case):
    y, probs, meta = case
    patients = np.arange(400) // 2
    table = subgroup_table(
        y,
        probs,
        ["mel", "nv", "bkl"],
        ["mel"],
        meta,
        columns=["site"],
        groups=patients,
        threshold=0.99,
        n_bootstrap=50,
    )
    assert table.loc[0, "n_patients"] == 200
    assert table.loc[0, "malignant_specificity"] == pytest.approx(np.mean(probs[y != 0, 0] < 0.99))


def test_subgroup_table_rejects_misaligned_metadata(case):
    y, probs, meta = case
    with pytest.raises(DataError, match="399 rows for 400"):
        subgroup_table(y, probs, ["mel", "nv", "bkl"], ["mel"], meta.iloc[:-1], n_bootstrap=0)
