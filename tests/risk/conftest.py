"""Fixtures for the risk tests: one shrunk real-config run shared by several tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SKINML_SHARED_DATA", REPO.parent / "shared" / "data"))

SHRINK = [
    "data.n_subjects=3000",
    "data.prevalence=0.05",
    "cv.outer_folds=2",
    "cv.inner_folds=2",
    "calibration.folds=3",
    "report.n_bootstrap=200",
]


def compose_risk(overrides: list[str], tmp: Path):
    """The real Hydra config (``configs/risk.yaml``), shrunk, with MLflow in ``tmp``."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        return compose(
            config_name="risk",
            overrides=[*SHRINK, f"tracking.tracking_uri=sqlite:///{tmp}/mlflow.db", *overrides],
        )


@pytest.fixture(scope="session")
def logistic_run(tmp_path_factory):
    """A GRS + survey logistic run on a small simulated cohort: (run dir, metrics doc, cfg)."""
    from skinml.cli.risk import run_from_config

    tmp = tmp_path_factory.mktemp("risk_logistic")
    cfg = compose_risk(["risk/model=grs_survey_logistic"], tmp)
    doc = run_from_config(cfg, tmp / "run")
    return tmp / "run", doc, cfg


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path
