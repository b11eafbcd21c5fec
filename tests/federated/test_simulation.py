"""skinml-federate on Flower's simulation engine: 2 hospitals, 2 rounds, a tiny model.

One FedProx federation is run for the module and its outputs are checked: per-site and
pooled test metrics with CIs, the calibration fitted on pooled validation predictions, the
exported ONNX file in the clinician's predictor, and the MLflow parent and child runs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.federated.conftest import SITES, run_federation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def federation(two_sites, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fedprox")
    run_dir = tmp / "run"
    outcome = run_federation(
        two_sites, tmp, run_dir, "federation=fedprox", "federation.strategy.proximal_mu=0.05"
    )
    return outcome, run_dir, tmp


def test_two_rounds_with_both_hospitals(federation):
    outcome, _, _ = federation
    assert [r["round"] for r in outcome["rounds"]] == [1, 2]
    assert outcome["sites"] == list(SITES)
    assert outcome["failed"] == []
    for record in outcome["rounds"]:
        assert set(record["sites"]) == set(SITES)
        for figures in record["sites"].values():
            assert figures["train_num-examples"] > 0 and np.isfinite(figures["train_loss"])
            assert 0.0 <= figures["val_balanced_accuracy"] <= 1.0
        # the model goes to both hospitals twice (train, evaluate) and comes back once each
        assert record["bytes_to_clients"] == 2 * record["bytes_from_clients"] > 1_000_000
    assert outcome["bytes_per_round"][0] == 3 * outcome["rounds"][0]["bytes_from_clients"]
    assert outcome["strategy"].endswith("FedProx")
    assert outcome["rounds_to_converge"] in (1, 2)
    # the exported model is the round with the best federated validation balanced accuracy
    scores = [r["evaluate"]["val_balanced_accuracy"] for r in outcome["rounds"]]
    assert outcome["selected_round"] == 1 + int(np.argmax(scores))
    assert outcome["class_balance"] == "federation"


def test_per_site_and_pooled_metrics_with_intervals(federation):
    outcome, run_dir, _ = federation
    m = outcome["metrics"]
    split = pd.read_csv(run_dir / "split_manifest.csv")
    assert m["test_n"] == (split["split"] == "test").sum()
    for name in ("test_balanced_accuracy", "test_macro_auc", "val_balanced_accuracy"):
        assert m[f"{name}_ci_low"] <= m[name] <= m[f"{name}_ci_high"], name
    # the generated lesions are easy: a federation that learns beats chance clearly
    assert m["test_macro_auc"] > 0.75
    assert m["temperature"] > 0 and 0 <= m["malignant_threshold"] <= 1
    table = pd.read_csv(run_dir / "per_site_test.csv")
    assert list(table["site"]) == [*SITES, "pooled"]
    for site in SITES:
        n = ((split["site"] == site) & (split["split"] == "test")).sum()
        assert table.set_index("site").loc[site, "n"] == n
        figures = outcome["per_site_test"][site]
        assert figures["test_balanced_accuracy_ci_low"] <= figures["test_balanced_accuracy"]
    # per-site splits are lesion-grouped within each site
    assert (split.groupby("lesion_id")["split"].nunique() == 1).all()
    assert (split.groupby("lesion_id")["site"].nunique() == 1).all()


def test_exported_model_predicts_the_federations_calibrated_probabilities(federation):
    from skinml.modelfile import read_metadata
    from skinml.predict.predictor import ImagePredictor

    outcome, run_dir, _ = federation
    meta = read_metadata(run_dir / "model.onnx")
    assert meta.classes == ("mel", "nv") and meta.malignant == ("mel",)
    assert meta.calibration.fitted_on == "validation"
    assert meta.calibration.temperature == pytest.approx(outcome["metrics"]["temperature"])
    assert meta.threshold("malignant").chosen_on == "validation"
    assert meta.extra["federated_training"]["sites"] == list(SITES)
    assert meta.metrics["test_balanced_accuracy"].n == outcome["metrics"]["test_n"]
    # rows of predictions_test.csv follow the sites' test rows of the pooled split manifest
    split = pd.read_csv(run_dir / "split_manifest.csv")
    test = split[split["split"] == "test"]
    paths = [run_dir / p for p in test["image"]]
    rows = ImagePredictor(run_dir / "model.onnx", workers=0).predict_paths(paths)
    got = np.array([[r["p_mel"], r["p_nv"]] for r in rows], dtype=float)
    want = pd.read_csv(run_dir / "predictions_test.csv")[["p_mel", "p_nv"]].to_numpy()
    assert np.abs(got - want).max() <= 1e-4
    card = (run_dir / "model.card.md").read_text()
    assert "Training (federated)" in card and "never left their site" in card


def test_mlflow_parent_run_and_one_child_run_per_hospital(federation):
    import mlflow

    outcome, run_dir, tmp = federation
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    parent = client.get_run(outcome["mlflow_run_id"])
    assert parent.data.params["federation.rounds"] == "2"
    assert parent.data.tags["strategy"] == "FedProx"
    rounds = client.get_metric_history(parent.info.run_id, "round/val_loss")
    assert [m.step for m in rounds] == [1, 2]
    assert [
        m.step for m in client.get_metric_history(parent.info.run_id, "round/bytes_per_round")
    ] == [1, 2]
    assert 0 <= parent.data.metrics["test_balanced_accuracy"] <= 1
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.data.tags["site"] for c in children) == list(SITES)
    split = pd.read_csv(run_dir / "split_manifest.csv")
    identifiers = {*split["image"], *split["patient_id"], *split["lesion_id"]}
    for child in children:
        site = child.data.tags["site"]
        n_train = ((split["site"] == site) & (split["split"] == "train")).sum()
        assert child.data.params["n_train"] == str(n_train)
        history = client.get_metric_history(child.info.run_id, "round/train_loss")
        assert [m.step for m in history] == [1, 2]
        assert 0 <= child.data.metrics["test_balanced_accuracy"] <= 1
        text = json.dumps([child.data.params, child.data.tags, child.data.metrics])
        assert not [i for i in identifiers if str(i) in text]
