"""Flower's privacy options run end to end: central DP with the epsilon spent, and SecAgg+."""

from __future__ import annotations

import math

import pytest

from tests.federated.conftest import SITES, run_federation

pytestmark = pytest.mark.slow

QUICK = ("export.enabled=false", "tracking.log_model=false")


def test_differential_privacy_reports_the_epsilon_spent(two_sites, tmp_path):
    import mlflow

    outcome = run_federation(
        two_sites,
        tmp_path,
        tmp_path / "run",
        "federation.privacy.dp.noise_multiplier=0.8",
        "federation.privacy.dp.clipping_norm=0.05",
        *QUICK,
    )
    privacy = outcome["privacy"]
    assert privacy["releases"] == 2  # one Gaussian release per round
    assert privacy["noise_multiplier"] == 0.8 and privacy["clipping_norm"] == 0.05
    assert privacy["delta"] == pytest.approx(1e-5)
    assert math.isfinite(privacy["epsilon"]) and privacy["epsilon"] > 0
    # more noise, same rounds: a smaller epsilon (the accountant is live, not a constant)
    from flwr.supercore.privacy_accounting import (
        GaussianPrivacyEvent,
        NeighboringRelation,
        PrivacyConfig,
        SamplingMethod,
    )
    from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

    accountant = RdpAccountant(
        PrivacyConfig(
            1e-5, 2, NeighboringRelation.ADD_OR_REMOVE_ONE, SamplingMethod.NO_AMPLIFICATION
        )
    )
    accountant.compose(GaussianPrivacyEvent(1.6, 2, 2), count=2)
    assert accountant.get_epsilon(1e-5) < privacy["epsilon"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(outcome["mlflow_run_id"])
    assert run.data.metrics["dp_epsilon"] == pytest.approx(privacy["epsilon"])
    assert 0 <= outcome["metrics"]["test_balanced_accuracy"] <= 1


def test_secure_aggregation_runs_two_rounds(two_sites, tmp_path):
    outcome = run_federation(
        two_sites, tmp_path, tmp_path / "run", "federation.privacy.secagg=true", *QUICK
    )
    assert [r["round"] for r in outcome["rounds"]] == [1, 2]
    assert outcome["failed"] == []
    # the server saw no single update: the per-site training figures are not known to it ...
    assert all("train_loss" not in r["sites"].get(s, {}) for r in outcome["rounds"] for s in SITES)
    # ... but validation of the securely aggregated model still runs at both hospitals
    assert all(set(r["sites"]) == set(SITES) for r in outcome["rounds"])
    losses = [r["evaluate"]["val_loss"] for r in outcome["rounds"]]
    assert all(math.isfinite(v) for v in losses)
    assert outcome["metrics"]["test_macro_auc"] > 0.6  # the aggregated update was applied
