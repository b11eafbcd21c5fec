"""Subgroups and lesion-grouped CIs on the real HAM10000 metadata (DermaMNIST test split).

The metadata (site, sex, age, localization, lesion ids) are real; the class
probabilities are simulated, because no trained model belongs in a unit test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skinml.evaluation import MalignancyThreshold, evaluate, malignant_probability, subgroup_table

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MALIGNANT = ("akiec", "bcc", "mel")


@pytest.mark.real_data
def test_subgroups_on_real_ham10000_metadata(shared_data, rng):
    manifest = pd.read_csv(shared_data / "ham10000_images_200x150" / "manifest.csv")
    test = manifest[manifest["dermamnist_split"] == "test"].reset_index(drop=True)
    val = manifest[manifest["dermamnist_split"] == "val"].reset_index(drop=True)

    def simulated_probs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        y = frame["dx"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
        logits = rng.normal(size=(len(y), 7)) + 2.0 * np.eye(7)[y]
        return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    y_val, p_val = simulated_probs(val)
    y_test, p_test = simulated_probs(test)
    picker = MalignancyThreshold(0.95).fit(
        malignant_probability(p_val, CLASSES, MALIGNANT), np.isin(y_val, [0, 1, 4])
    )
    ev = evaluate(
        test["dx"].to_numpy(),
        p_test,
        CLASSES,
        MALIGNANT,
        threshold=picker,
        groups=test["lesion_id"],
        n_bootstrap=50,
        split="test_simulated_probs",
    )
    assert ev.n == 2005 and ev.n_groups == test["lesion_id"].nunique()
    assert ev.per_class["n"].tolist() == [test["dx"].eq(c).sum() for c in CLASSES]

    meta = test.rename(columns={"dataset": "site"})
    table = subgroup_table(
        y_test,
        p_test,
        CLASSES,
        MALIGNANT,
        meta,
        threshold=picker,
        groups=test["lesion_id"],
        n_bootstrap=50,
    )
    assert table.attrs["missing_columns"] == ["device"]
    for column in ("site", "sex", "age_band", "localization"):
        assert table.loc[table["column"] == column, "n"].sum() == 2005
    loc = table[table["column"] == "localization"].set_index("level")
    assert loc["n"].to_dict() == test["localization"].value_counts().to_dict()
    small = loc[loc["n"] < 30]
    assert len(small) > 0 and small["small"].all()
    assert small["note"].str.contains("too few cases").all()
    assert set(table.loc[table["column"] == "site", "level"]) == set(test["dataset"])
