"""skinml-train as users run it: a kill -9 mid-run then resume, and 2-process DDP (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
#: This checkout's skinml-train (a console script may belong to another install).
TRAIN = [sys.executable, "-m", "skinml.cli.train"]


def _overrides(shrunk, manifest: Path, tmp: Path, run_dir: Path) -> list[str]:
    extra = (
        "trainer.batch_size=8",
        "evaluation.gradcam_images=0",
        "export.enabled=false",
        "tracking.log_model=false",
        f"hydra.run.dir={run_dir}",
    )
    return shrunk(manifest, tmp, *extra)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_kill9_mid_run_then_resume_reaches_the_same_metrics(
    tmp_path, lesion_dataset_factory, shrunk_overrides
):
    manifest = lesion_dataset_factory(tmp_path / "data", n_per_class=60)
    ref_dir, cut_dir = tmp_path / "reference", tmp_path / "interrupted"
    subprocess.run(
        [*TRAIN, *_overrides(shrunk_overrides, manifest, tmp_path, ref_dir)],
        check=True,
        env=_env(),
        capture_output=True,
        timeout=600,
    )
    reference = json.loads((ref_dir / "metrics.json").read_text())

    cmd = [*TRAIN, *_overrides(shrunk_overrides, manifest, tmp_path, cut_dir)]
    proc = subprocess.Popen(
        cmd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    last = cut_dir / "checkpoints" / "last.pt"
    deadline = time.time() + 400
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be interrupted"
    time.sleep(0.5)  # now inside the second epoch
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut_dir / "metrics.json").exists()

    subprocess.run([*cmd, "resume=auto"], check=True, env=_env(), capture_output=True, timeout=600)
    resumed = json.loads((cut_dir / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "test_balanced_accuracy",
        "test_macro_auc",
        "temperature",
        "val_balanced_accuracy",
    ):
        assert resumed[key] == pytest.approx(reference[key], abs=1e-9), key
    assert resumed["best_epoch"] == reference["best_epoch"]


@pytest.mark.skipif(shutil.which("torchrun", path=str(BIN)) is None, reason="torchrun not found")
def test_ddp_two_cpu_processes_with_gloo(tmp_path, lesion_dataset_factory, shrunk_overrides):
    manifest = lesion_dataset_factory(tmp_path / "data", n_per_class=30)
    run_dir = tmp_path / "ddp"
    proc = subprocess.run(
        [
            BIN / "torchrun",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "skinml.cli.train",
            *_overrides(shrunk_overrides, manifest, tmp_path, run_dir),
            "trainer.device=cpu",
            "trainer.max_epochs=2",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    import mlflow

    runs = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [
            mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
            .get_experiment_by_name("skinml-train")
            .experiment_id
        ]
    )
    assert len(runs) == 1  # only rank 0 logs
    history = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_metric_history(
        runs[0].info.run_id, "epoch/train_images_per_s"
    )
    assert len(history) == 2
