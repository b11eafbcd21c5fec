"""Two generated hospitals and the real ``federate`` Hydra config, shrunk to seconds."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("flwr", reason="Flower is not installed (pip install -e '.[federated]')")

from tests.training.conftest import make_lesion_dataset

SITES = ("hospital_a", "hospital_b")


def make_two_site_dataset(root: Path, n_per_class: int = 40, seed: int = 0) -> Path:
    """The training tests' generated lesions (mel vs nv), every other image at each hospital."""
    manifest = make_lesion_dataset(root, n_per_class=n_per_class, seed=seed)
    frame = pd.read_csv(manifest)
    frame["site"] = [SITES[i % 2] for i in range(len(frame))]
    frame.to_csv(manifest, index=False)
    return manifest


def federate_overrides(manifest: Path, tmp: Path, *extra: str) -> list[str]:
    """The real federate config shrunk to a CPU run of seconds per round, outputs in tmp."""
    base = [
        "data=manifest",
        f"data.source.path={manifest}",
        "data.classes=[mel,nv]",
        "data.malignant=[mel]",
        "data.image_size=32",
        "data.split.val_fraction=0.25",
        "data.split.test_fraction=0.25",
        "model=small_cnn",
        "trainer.batch_size=16",
        "federation.rounds=2",
        "federation.checks.min_images=10",
        "evaluation.n_bootstrap=50",
        f"tracking.tracking_uri=sqlite:///{tmp}/mlflow.db",
        f"output_root={tmp}/outputs",
    ]
    merged = {o.split("=", 1)[0]: o for o in base}
    merged.update({o.split("=", 1)[0]: o for o in extra})
    return list(merged.values())


def compose_federate(overrides: list[str]):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        return compose(config_name="federate", overrides=overrides)


def run_federation(manifest: Path, tmp: Path, run_dir: Path, *extra: str) -> dict:
    """One simulated federation (2 hospitals) with the shrunk config; returns its outcome."""
    from skinml.federated.launch import run

    return run(compose_federate(federate_overrides(manifest, tmp, *extra)), run_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def two_sites(tmp_path_factory) -> Path:
    return make_two_site_dataset(tmp_path_factory.mktemp("fed_data") / "data")
