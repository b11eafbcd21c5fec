"""Faults: a hospital that fails mid-round, and a server that restarts."""

from __future__ import annotations

import pytest

from skinml.federated.rounds import CHECKPOINT
from tests.federated.conftest import run_federation

pytestmark = pytest.mark.slow

QUICK = ("export.enabled=false", "tracking.log_model=false")


def test_a_failing_hospital_is_recorded_and_a_restarted_server_resumes(two_sites, tmp_path):
    import mlflow

    run_dir = tmp_path / "run"
    # round 2: hospital_b's training raises; the round goes on with hospital_a alone
    first = run_federation(
        two_sites,
        tmp_path,
        run_dir,
        "federation.drill.fail_site=hospital_b",
        "federation.drill.fail_round=2",
        "federation.strategy.min_train_nodes=1",
        "federation.min_replies=1",
        *QUICK,
    )
    assert [r["round"] for r in first["rounds"]] == [1, 2]
    failed = first["rounds"][1]["failed"]
    assert [(f["site"], f["phase"]) for f in failed] == [("hospital_b", "train")]
    assert "failure drill" in failed[0]["reason"]
    assert first["rounds"][0]["failed"] == []
    assert set(first["rounds"][1]["sites"]["hospital_a"]) >= {"train_loss", "val_loss"}
    assert "train_loss" not in first["rounds"][1]["sites"]["hospital_b"]  # it only validated
    assert first["failed"] == failed
    assert (run_dir / "federation" / CHECKPOINT).is_file()

    # the server restarts with one more round: rounds 1-2 are not run again
    second = run_federation(two_sites, tmp_path, run_dir, "federation.rounds=3", "resume=auto",
                            *QUICK)  # fmt: skip
    assert [r["round"] for r in second["rounds"]] == [1, 2, 3]
    assert second["rounds"][:2] == first["rounds"]  # the first two rounds as recorded then
    assert second["rounds"][2]["failed"] == []
    assert second["mlflow_run_id"] == first["mlflow_run_id"]  # the same MLflow run goes on
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    steps = [m.step for m in client.get_metric_history(second["mlflow_run_id"], "round/val_loss")]
    assert steps == [1, 2, 3]
    failures = client.get_metric_history(
        client.search_runs(
            [client.get_run(second["mlflow_run_id"]).info.experiment_id],
            "tags.site = 'hospital_b'",
        )[0].info.run_id,
        "round/failed",
    )
    assert [m.step for m in failures] == [2]
