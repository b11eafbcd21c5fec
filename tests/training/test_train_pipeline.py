"""skinml-train end to end with the real Hydra config, shrunk: what comes out is checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from skinml.errors import ConfigError, ManyErrors


def _run(cfg, run_dir):
    from skinml.training.pipeline import run

    run_dir.mkdir(parents=True, exist_ok=True)
    return run(cfg, run_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, lesion_dataset_factory, shrunk_overrides):
    from hydra import compose, initialize_config_module

    tmp = tmp_path_factory.mktemp("train")
    manifest = lesion_dataset_factory(tmp / "data", n_per_class=32)
    overrides = shrunk_overrides(manifest, tmp, "trainer.max_epochs=4")
    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return _run(cfg, tmp / "run"), tmp


def test_run_writes_metrics_with_intervals(trained):
    outcome, _ = trained
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    for name in (
        "test_accuracy",
        "test_balanced_accuracy",
        "test_macro_auc",
        "test_malignant_sensitivity",
        "test_malignant_specificity",
        "test_ece",
    ):
        assert 0.0 <= metrics[name] <= 1.0, name
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"], name
    # The generated lesions are easy: a working pipeline must beat chance clearly.
    assert metrics["test_macro_auc"] > 0.8
    assert metrics["temperature"] > 0
    assert 0.0 <= metrics["malignant_threshold"] <= 1.0


def test_run_artifacts_on_disk(trained):
    outcome, _ = trained
    d = outcome.run_dir
    for name in (
        "resolved_config.yaml",
        "split_manifest.csv",
        "dataset_card.md",
        "evaluation.json",
        "subgroups_test.csv",
        "confusion_matrix_test.csv",
        "model_bundle.pt",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "plots/confusion_matrix_test.png",
        "plots/roc_test.png",
        "plots/reliability_test.png",
        "plots/gradcam_test.png",
    ):
        assert (d / name).is_file(), name
    import pandas as pd

    split = pd.read_csv(d / "split_manifest.csv")
    assert set(split["split"]) == {"train", "val", "test"}
    by_patient = split.groupby("patient_id")["split"].nunique()
    assert (by_patient == 1).all()  # no patient in two splits

    preds = pd.read_csv(d / "predictions_test.csv")
    test_rows = split[split["split"] == "test"]
    assert sorted(preds["image"]) == sorted(test_rows["image"])  # one row per test image
    prob_cols = [c for c in preds.columns if c.startswith("p_")]
    assert {c.removeprefix("p_") for c in prob_cols} >= set(preds["label"])
    assert preds[prob_cols].sum(axis=1).round(5).eq(1.0).all()
    assert (
        preds[prob_cols].to_numpy().argmax(1)
        == [prob_cols.index(f"p_{c}") for c in preds["predicted"]]
    ).all()


def test_bundle_carries_meaning(trained):
    from skinml.training.bundle import ModelBundle

    outcome, _ = trained
    bundle = ModelBundle.load(outcome.run_dir)
    meta = bundle.metadata
    assert meta.classes == ("mel", "nv") and meta.malignant == ("mel",)
    assert meta.preprocessing.input_size == (32, 32)
    assert meta.calibration.fitted_on == "validation"
    assert meta.threshold("malignant").chosen_on == "validation"
    import pandas as pd

    n_test = int((pd.read_csv(outcome.run_dir / "split_manifest.csv")["split"] == "test").sum())
    assert (
        meta.metrics["test_accuracy"].n == n_test and meta.metrics["test_accuracy"].split == "test"
    )
    assert meta.provenance.data_fingerprint and len(meta.provenance.data_fingerprint) == 64
    model = bundle.build_model()
    import torch

    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 2)


def test_mlflow_run_has_params_metrics_and_artifacts(trained):
    import mlflow

    outcome, tmp = trained
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    run = client.get_run(outcome.mlflow_run_id)
    assert run.data.params["model.name"] == "resnet10t"
    assert run.data.params["data.image_size"] == "32"
    assert "test_accuracy" in run.data.metrics and "val_balanced_accuracy" in run.data.metrics
    from skinml.training.bundle import ModelBundle

    fingerprint = ModelBundle.load(outcome.run_dir).metadata.provenance.data_fingerprint
    assert run.data.tags["data_fingerprint"] == fingerprint
    assert run.data.tags["git_commit"]
    assert len(client.get_metric_history(run.info.run_id, "epoch/train_loss")) >= 2  # per epoch
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"plots", "config", "data", "bundle", "evaluation", "provenance.json"} <= arts


def test_unknown_backbone_stops_before_training(lesion_manifest, tmp_path, train_config):
    cfg = train_config(lesion_manifest, tmp_path, "model.name=resnet_999")
    with pytest.raises(ConfigError, match="resnet_999"):
        _run(cfg, tmp_path / "run")


def test_unknown_class_in_data_is_named(lesion_manifest, tmp_path, train_config):
    cfg = train_config(lesion_manifest, tmp_path, "data.classes=[nv,bcc]")
    with pytest.raises(ConfigError, match="mel"):
        _run(cfg, tmp_path / "run")


def test_missing_images_are_all_listed(lesion_manifest, tmp_path, train_config):
    (lesion_manifest.parent / "images" / "mel_000.png").unlink()
    (lesion_manifest.parent / "images" / "nv_005.png").unlink()
    cfg = train_config(lesion_manifest, tmp_path)
    with pytest.raises(ManyErrors) as info:
        _run(cfg, tmp_path / "run")
    assert "mel_000.png" in str(info.value) and "nv_005.png" in str(info.value)


def test_config_typo_is_refused_with_the_key(lesion_manifest, tmp_path, train_config):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="max_epoch"):
        train_config(lesion_manifest, tmp_path, "trainer.max_epoch=3")


def test_seed_makes_runs_repeatable(lesion_manifest, tmp_path, train_config):
    ov = [
        "trainer.max_epochs=1",
        "evaluation.gradcam_images=0",
        "export.enabled=false",
        "tracking.log_model=false",
    ]
    a = _run(train_config(lesion_manifest, tmp_path / "a", *ov), tmp_path / "a" / "run")
    b = _run(train_config(lesion_manifest, tmp_path / "b", *ov), tmp_path / "b" / "run")
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    assert np.isclose(a.metrics["temperature"], b.metrics["temperature"])


def test_run_provenance_traces_a_result_to_commit_data_and_command(trained):
    import yaml

    from skinml.tracking.provenance import command_provenance
    from skinml.training.bundle import ModelBundle, run_provenance

    outcome, _ = trained
    hydra_dir = outcome.run_dir / ".hydra"
    hydra_dir.mkdir(exist_ok=True)
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(["data=manifest", "seed=0"]))
    prov = run_provenance(outcome.run_dir)
    bundle = ModelBundle.load(outcome.run_dir)
    assert prov["data_fingerprint"] == bundle.metadata.provenance.data_fingerprint
    assert len(prov["data_fingerprint"]) == 64
    assert prov["command"] == "skinml-train data=manifest seed=0"
    assert prov["packages"]["torch"]
    here = command_provenance(["scripts/summarise_run.py", "run dir", "-o", "x.json"])
    assert here["command"] == "scripts/summarise_run.py 'run dir' -o x.json"
    assert "git_commit" in here and here["packages"]


def _mlflow_run(trained):
    import mlflow

    outcome, tmp = trained
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    return client, client.get_run(outcome.mlflow_run_id)


def test_mlflow_curves_and_final_figures_never_share_a_key(trained):
    import pandas as pd

    outcome, _ = trained
    client, run = _mlflow_run(trained)
    epochs = pd.read_csv(outcome.run_dir / "history.csv")["epoch"].tolist()
    assert epochs == list(range(1, len(epochs) + 1))  # counted from 1
    for key in run.data.metrics:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        if key.startswith("epoch/"):
            assert steps == epochs, key  # one value per epoch, step = epoch number
        else:
            assert len(steps) == 1, key  # a final figure has no history
    curves = {k.removeprefix("epoch/") for k in run.data.metrics if k.startswith("epoch/")}
    assert {"train_loss", "val_loss", "val_balanced_accuracy"} <= curves
    assert not any(k.endswith(("_ci_low", "_ci_high")) for k in run.data.metrics)


def test_mlflow_table_shows_the_selected_model(trained):
    outcome, _ = trained
    client, run = _mlflow_run(trained)
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    best = metrics["best_epoch"]
    assert 1 <= best <= metrics["epochs_run"] and run.data.metrics["best_epoch"] == best
    curve = {
        m.step: m.value
        for m in client.get_metric_history(run.info.run_id, "epoch/val_balanced_accuracy")
    }
    assert max(curve.values()) == curve[best]  # the selected epoch is the best one
    # the run table's value is the selected epoch's figure, not the last epoch's
    selected = run.data.metrics["val_balanced_accuracy"]
    assert selected == pytest.approx(curve[best], abs=1e-9)
    assert run.data.metrics["selected_val_balanced_accuracy"] == pytest.approx(curve[best])
    for key in ("test_accuracy", "test_macro_auc", "test_malignant_sensitivity", "temperature"):
        assert run.data.metrics[key] == pytest.approx(metrics[key]), key


def test_mlflow_run_is_named_described_and_knows_its_data(trained):
    import mlflow

    from skinml.training.bundle import ModelBundle

    outcome, tmp = trained
    _, run = _mlflow_run(trained)
    assert run.info.run_name == "manifest-resnet10t-32px-seed0"
    note = run.data.tags["mlflow.note.content"]
    assert "resnet10t" in note and "Selected epoch" in note and "Test (n=" in note
    fingerprint = ModelBundle.load(outcome.run_dir).metadata.provenance.data_fingerprint
    inputs = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d
        for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "validation", "testing"}
    train = inputs["training"].dataset
    assert train.digest == fingerprint[:36] and train.name.endswith("/train")
    tags = {t.key: t.value for t in inputs["training"].tags}
    assert tags["data_fingerprint"] == fingerprint
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")  # load_table reads the global store
    table = mlflow.load_table("evaluation/metrics_with_ci.json", run_ids=[run.info.run_id])
    sens = table[(table["split"] == "test") & (table["metric"] == "malignant_sensitivity")]
    assert sens["interval"].iloc[0].startswith("wilson") and sens["denominator"].iloc[0] > 0
    assert run.data.tags["gradcam"].startswith("coarse (")  # 32 px: a tiny feature map


def test_console_summary_counts_epochs_from_one_and_shows_counts(trained):
    from skinml.cli.train import summary_lines

    outcome, _ = trained
    text = "\n".join(summary_lines(outcome))
    assert f"finished, best epoch {outcome.best_epoch}." in text
    sens = outcome.test.headline["malignant_sensitivity"]
    assert f"{sens.successes}/{sens.n} (" in text and "chosen on validation" in text


def test_run_report_shows_the_selected_model_and_links_its_files(trained):
    import re

    outcome, _ = trained
    d = outcome.run_dir
    page = (d / "index.html").read_text(encoding="utf-8")
    metrics = json.loads((d / "metrics.json").read_text())
    bal = metrics["test_balanced_accuracy"]
    low, high = metrics["test_balanced_accuracy_ci_low"], metrics["test_balanced_accuracy_ci_high"]
    assert f"{bal:.3f} ({low:.3f}–{high:.3f})" in page  # headline with its interval
    sens = metrics["test_malignant_sensitivity"]
    import pandas as pd

    row = pd.read_csv(d / "metrics_with_ci.csv").query(
        "split == 'test' and metric == 'malignant_sensitivity'"
    )
    k, n_mal = int(row["successes"].iloc[0]), int(row["denominator"].iloc[0])
    assert abs(k / n_mal - sens) < 1e-9 and f"<td>{k}/{n_mal}</td>" in page
    assert f"selected epoch {metrics['best_epoch']} of {metrics['epochs_run']}" in page
    assert "Training curves" in page and "Subgroups (test)" in page
    # every plot is embedded, every link points at a file that exists
    assert page.count("data:image/png;base64,") >= 5
    links = re.findall(r'href="([^"]+)"', page)
    assert {"model.onnx", "model.card.html", "predictions_test.csv"} <= set(links)
    assert all((d / href).is_file() for href in links)


def test_html_model_card_leads_with_warnings_or_a_summary_in_words(trained):
    outcome, _ = trained
    card = (outcome.run_dir / "model.card.html").read_text(encoding="utf-8")
    assert card.startswith("<!DOCTYPE html>") and "<table>" in card
    assert "<h2>In brief</h2>" in card and "<strong>What it does:</strong>" in card
    assert "held-out test images" in card
    assert "<script" not in card and "http" not in card.split("<body>")[1].split("SHA-256")[0]


@pytest.mark.parametrize("page", ["index.html", "model.card.html"])
def test_run_pages_fit_a_laptop_screen_in_chromium(trained, page, fits_laptop_screen):
    outcome, _ = trained
    assert fits_laptop_screen(outcome.run_dir / page).n_tables >= 2


def _script(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_summary_and_ensemble_of_runs(trained, tmp_path):
    """An ensemble of one run is that run, figure for figure and interval for interval;
    seeds get their mean and sample sd; runs on different test images are refused."""
    import pandas as pd

    seeds = _script("summarise_seeds")
    outcome, _ = trained
    metrics = json.loads((outcome.run_dir / "metrics.json").read_text())
    alone = seeds.ensemble([outcome.run_dir])
    twice = seeds.ensemble([outcome.run_dir, outcome.run_dir])
    for name, short in (("accuracy", "acc"), ("macro_auc", "auc")):
        assert alone[f"ensemble_test_{short}"] == pytest.approx(metrics[f"test_{name}"])
        low, high = alone[f"ensemble_test_{short}_ci95"]
        assert low == pytest.approx(metrics[f"test_{name}_ci_low"])
        assert high == pytest.approx(metrics[f"test_{name}_ci_high"])
        assert twice[f"ensemble_test_{short}"] == pytest.approx(alone[f"ensemble_test_{short}"])

    table = seeds.seed_table([{"seed": 0, "test_acc": 0.8}, {"seed": 1, "test_acc": 0.6}])
    assert table["test_acc_per_seed"] == [0.8, 0.6]
    assert table["test_acc_mean"] == pytest.approx(0.7)
    assert table["test_acc_sd"] == pytest.approx(0.1414, abs=1e-4)
    assert "test_auc_mean" not in table  # a key no run has is left out, not invented
    with pytest.raises(SystemExit, match="repeat a seed"):
        seeds.seed_table([{"seed": 0}, {"seed": 0}])

    other = tmp_path / "other"
    other.mkdir()
    shuffled = pd.read_csv(outcome.run_dir / "predictions_test.csv").iloc[::-1]
    shuffled.to_csv(other / "predictions_test.csv", index=False)
    with pytest.raises(SystemExit, match="same split"):
        seeds.ensemble([outcome.run_dir, other])
