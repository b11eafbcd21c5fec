"""Real-data checks: UCI Dermatology and PAD-UFES-20 survey metadata, read by path.

UCI Dermatology (366 patients, 34 attributes): psoriasis (class 1) vs the
other five erythemato-squamous diseases, and the 6-class task whose published
10-fold accuracy is 96.7-98.9% (Demiroz, Guvenir & Ilter 1998 and later work).
``?`` ages and the implausible age 0 become missing values (mean-imputed),
which the loader reports.

PAD-UFES-20: skin cancer (BCC, SCC, MEL) vs not from patient survey fields.
Its SOURCE.md warns that 804 rows miss *every* survey field and are all
non-cancer, so "survey missing" predicts the label. :func:`missingness_leak`
measures that (AUC of the missing-indicator alone) and the default
``missing_policy="complete_cases"`` guards against it by keeping only rows
with the survey block (the excluded count is reported, not hidden).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinml.datasets import UCI_FEATURES
from skinml.errors import DataError
from skinml.risk import schema
from skinml.risk.dataset import RiskDataset

# One definition of the UCI columns lives with the embedded dataset.
UCI_COLUMNS = [*UCI_FEATURES, "class"]
PAD_BINARY = [
    "smoke",
    "drink",
    "pesticide",
    "skin_cancer_history",
    "cancer_history",
    "has_piped_water",
    "has_sewage_system",
]
PAD_SURVEY_BLOCK = [*PAD_BINARY, "gender", "fitspatrick"]
PAD_CANCER = {"BCC", "SCC", "MEL"}


def read_uci_dermatology(folder: str | PathLike[str]) -> pd.DataFrame:
    """The raw table with named columns (``?`` -> NaN)."""
    p = Path(folder) / "dermatology.data"
    if not p.is_file():
        raise DataError(
            "UCI Dermatology data not found", file=p, fix="set data.path / SKINML_SHARED_DATA"
        )
    df = pd.read_csv(p, header=None, na_values="?", names=UCI_COLUMNS)
    if df.shape != (366, 35):
        raise DataError(f"expected 366 rows x 35 columns, found {df.shape}", file=p)
    return df


def uci_schema() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for c in UCI_COLUMNS[:-2]:
        if c == "family_history":
            fields.append({"name": c, "type": "binary"})
        else:
            fields.append({"name": c, "type": "numeric", "min": 0, "max": 3})
    fields.append({"name": "age", "type": "numeric", "min": 1, "max": 110})
    return fields


def load_uci_dermatology_dataset(folder: str | PathLike[str]) -> RiskDataset:
    """Psoriasis vs rest; age ``?`` and age 0 become missing (reported)."""
    df = read_uci_dermatology(folder)
    age_zero = int((df["age"] == 0).sum())
    age_missing = int(df["age"].isna().sum())
    df.loc[df["age"] == 0, "age"] = np.nan
    fields = uci_schema()
    enc = schema.encode_rows(df.drop(columns="class").to_dict("records"), fields)
    schema.raise_if_errors(
        enc, file=str(Path(folder) / "dermatology.data"), row_ids=list(range(1, len(df) + 1))
    )
    X = pd.DataFrame(enc.features, columns=enc.feature_names)
    ds = RiskDataset(
        name="uci_dermatology",
        X=X,
        y=(df["class"] == 1).astype(int).to_numpy(),
        sample_ids=[f"uci_{i + 1:03d}" for i in range(len(df))],
        weights=None,
        survey_fields=fields,
        positive_class="psoriasis",
        negative_class="other_erythemato_squamous",
        description="UCI Dermatology (real): psoriasis (class 1, n=112) vs the other five "
        "diseases (n=254)",
    )
    ds.reports["missingness"] = {
        "age_missing_question_mark": age_missing,
        "age_zero_set_missing": age_zero,
    }
    return ds


def uci_sixclass_cv_accuracy(
    folder: str | PathLike[str], *, folds: int = 10, seed: int = 0
) -> dict[str, Any]:
    """10-fold CV accuracy of the 6-class task (logistic regression and LightGBM) with CIs.

    The interval is a Wilson interval on the pooled out-of-fold correct count.
    """
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skinml.stats import wilson_ci

    df = read_uci_dermatology(folder)
    X = df.drop(columns="class")
    X["age"] = X["age"].where(X["age"] > 0)
    X = X.fillna(X.mean())
    y = df["class"].to_numpy()
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    models = {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)
        ),
        "lightgbm": LGBMClassifier(
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=7,
            min_child_samples=5,
            n_jobs=1,
            random_state=seed,
            verbose=-1,
        ),
    }
    out: dict[str, Any] = {
        "n": len(y),
        "folds": folds,
        "seed": seed,
        "published_range": [0.967, 0.989],
    }
    for name, m in models.items():
        pred = cross_val_predict(m, X, y, cv=cv)
        correct = int((pred == y).sum())
        lo, hi = wilson_ci(correct, len(y))
        out[name] = {"accuracy": correct / len(y), "ci_low": lo, "ci_high": hi}
    return out


def read_pad_ufes(folder: str | PathLike[str]) -> pd.DataFrame:
    p = Path(folder) / "metadata.csv"
    if not p.is_file():
        raise DataError(
            "PAD-UFES-20 metadata not found", file=p, fix="set data.path / SKINML_SHARED_DATA"
        )
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    for c in ("background_father", "background_mother"):
        df[c] = df[c].replace({"BRASIL": "BRAZIL"})
    return df


def pad_schema() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = [{"name": c, "type": "binary"} for c in PAD_BINARY]
    fields += [
        {
            "name": "gender",
            "type": "categorical",
            "levels": ["FEMALE", "MALE"],
            "reference": "FEMALE",
        },
        {"name": "fitspatrick", "type": "numeric", "min": 1, "max": 6},
        {"name": "age", "type": "numeric", "min": 0, "max": 120},
    ]
    return fields


def missingness_leak(df: pd.DataFrame) -> dict[str, Any]:
    """How well 'survey block missing' alone predicts cancer (AUC), and the counts behind it."""
    from sklearn.metrics import roc_auc_score

    y = df["diagnostic"].isin(PAD_CANCER).astype(int).to_numpy()
    missing = (df[PAD_SURVEY_BLOCK] == "").all(axis=1).to_numpy()
    return {
        "rows": len(df),
        "rows_missing_survey": int(missing.sum()),
        "cancer_among_missing": int(y[missing].sum()),
        "cancer_among_complete": int(y[~missing].sum()),
        "auc_of_missing_indicator": float(roc_auc_score(y, (~missing).astype(float))),
    }


def load_pad_ufes_dataset(
    folder: str | PathLike[str], *, missing_policy: str = "complete_cases"
) -> RiskDataset:
    """One row per lesion (first image); cancer vs not; split groups = patients.

    Args:
        missing_policy: ``complete_cases`` keeps lesions with the survey block
            (guards against the leak); ``keep`` keeps all lesions with missing
            answers mean-imputed plus a ``survey_missing`` indicator feature,
            i.e. the leaky setting, for demonstration.
    """
    if missing_policy not in ("complete_cases", "keep"):
        raise DataError(
            f"unknown missing_policy {missing_policy!r}", expected="complete_cases or keep"
        )
    raw = read_pad_ufes(folder)
    lesions = raw.drop_duplicates("lesion_id").reset_index(drop=True)
    leak = missingness_leak(lesions)
    missing = (lesions[PAD_SURVEY_BLOCK] == "").all(axis=1)
    if missing_policy == "complete_cases":
        lesions = lesions[~missing].reset_index(drop=True)
    fields = pad_schema()
    if missing_policy == "keep":  # the leaky indicator, as an explicit survey field
        fields.append({"name": "survey_missing", "type": "binary"})
        lesions["survey_missing"] = missing.astype(int).astype(str).to_numpy()
    enc = schema.encode_rows(lesions.to_dict("records"), fields)
    schema.raise_if_errors(enc, file=str(Path(folder) / "metadata.csv"))
    X = pd.DataFrame(enc.features, columns=enc.feature_names)
    ds = RiskDataset(
        name=f"pad_ufes_{missing_policy}",
        X=X,
        y=lesions["diagnostic"].isin(PAD_CANCER).astype(int).to_numpy(),
        sample_ids=lesions["lesion_id"].astype(str).tolist(),
        weights=None,
        survey_fields=fields,
        groups=lesions["patient_id"].to_numpy(),
        positive_class="skin_cancer",
        negative_class="not_cancer",
        description=f"PAD-UFES-20 (real): {len(lesions)} lesions, missing_policy={missing_policy}; "
        f"{int(missing.sum())} lesions lack the survey block and are all non-cancer",
    )
    ds.reports["leakage"] = {
        **leak,
        "missing_policy": missing_policy,
        "excluded_rows": int(missing.sum()) if missing_policy == "complete_cases" else 0,
    }
    return ds
