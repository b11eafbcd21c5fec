"""Separate processes on localhost: one SuperLink, one SuperNode per hospital.

Each hospital's node gets only its own manifest (its own rows, absolute image paths) in
``--node-config``; the researcher's ``skinml-federate federation.mode=deployment`` submits
the run. Every process is started in its own session and its group is ended afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.federated.conftest import SITES, federate_overrides, free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.Popen(
        args,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: its app processes end with it
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def _wait_for(log: Path, text: str, count: int = 1, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if log.is_file() and log.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {log} after {timeout} s:\n{log.read_text()[-2000:]}")


def _count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text) if log.is_file() else 0


def test_superlink_one_supernode_per_hospital_and_a_node_that_disconnects(two_sites, tmp_path):
    """Round 1 with both hospitals; then hospital_b's node dies mid-round 2.

    The node is killed (SIGKILL, no goodbye) once it has received round 2's training
    message. The SuperLink marks it offline after two missed heartbeats; the round goes on
    with hospital_a (the strategy's minimums are 1), and the run records the failure.
    """
    frame = pd.read_csv(two_sites)
    manifests = {}
    for site in SITES:
        own = frame[frame["site"] == site].copy()
        own["image"] = [str(two_sites.parent / p) for p in own["image"]]
        manifests[site] = tmp_path / f"{site}.csv"
        own.to_csv(manifests[site], index=False)
    link_port = free_port()
    nodes: dict[str, subprocess.Popen] = {}
    procs: list[subprocess.Popen] = []
    try:
        link_log = tmp_path / "superlink.log"
        procs.append(
            _start(
                [str(BIN / "flower-superlink"), "--insecure", "--port", str(link_port),
                 "--database", str(tmp_path / "superlink.db")],
                link_log,
            )
        )  # fmt: skip
        _wait_for(link_log, "Application startup complete")
        for site in SITES:
            node_config = f"manifest='{manifests[site]}' site='{site}'"
            nodes[site] = _start(
                [str(BIN / "flower-supernode"), "--insecure",
                 "--superlink", f"127.0.0.1:{link_port}", "--port", str(free_port()),
                 "--node-config", node_config],
                tmp_path / f"node_{site}.log",
            )  # fmt: skip
            procs.append(nodes[site])
        _wait_for(link_log, "Activated node_id", count=len(SITES))
        overrides = federate_overrides(
            two_sites,
            tmp_path,
            "federation.mode=deployment",
            f"federation.deployment.superlink=127.0.0.1:{link_port}",
            "federation.rounds=2",
            "federation.strategy.min_available_nodes=1",
            "federation.strategy.min_train_nodes=1",
            "federation.strategy.min_evaluate_nodes=1",
            "federation.min_replies=1",
            "hydra.run.dir=" + str(tmp_path / "run"),
        )
        # the researcher's command; data.source is not read in a deployment
        federate_log = tmp_path / "federate.log"
        federate = _start([str(BIN / "skinml-federate"), *overrides], federate_log)
        procs.append(federate)
        node_b_log = tmp_path / "node_hospital_b.log"
        t0 = time.monotonic()
        while _count(node_b_log, "Receiving: train message") < 2:
            assert federate.poll() is None, federate_log.read_text()[-3000:]
            assert time.monotonic() - t0 < 400, node_b_log.read_text()[-2000:]
            time.sleep(0.2)
        os.killpg(nodes["hospital_b"].pid, signal.SIGKILL)  # mid-round 2, no goodbye
        federate.wait(timeout=400)
    finally:
        _stop(procs)
    out = federate_log.read_text(errors="replace")
    assert federate.returncode == 0, out[-4000:]
    assert "skinml-federate finished: 2 rounds, sites ['hospital_a', 'hospital_b']" in out
    import json

    outcome = json.loads((tmp_path / "run" / "federation.json").read_text())
    rounds = outcome["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    # round 1: both hospitals trained and validated
    assert rounds[0]["failed"] == []
    assert set(rounds[0]["sites"]) == set(SITES)
    assert all("train_loss" in rounds[0]["sites"][s] for s in SITES)
    # round 2 went to both; hospital_b's training reply never came, hospital_a carried it
    failed2 = [(f["site"], f["phase"]) for f in rounds[1]["failed"]]
    assert ("hospital_b", "train") in failed2
    assert set(failed2) <= {("hospital_b", "train"), ("hospital_b", "evaluate")}
    assert "train_loss" in rounds[1]["sites"]["hospital_a"]
    assert "train_loss" not in rounds[1]["sites"].get("hospital_b", {})
    # the final predictions came from hospital_a only; the failure is on record
    assert ("hospital_b", "predict") in [(f["site"], f["phase"]) for f in outcome["failed"]]
    assert set(outcome["per_site_test"]) == {"hospital_a"}
    assert outcome["metrics"]["test_macro_auc"] > 0.6
    # the server never had a split manifest: the export was verified on the CC0 sample
    assert not (tmp_path / "run" / "split_manifest.csv").exists()
    assert (tmp_path / "run" / "verify_manifest.csv").is_file()
    from skinml.predict.predictor import ImagePredictor

    rows = ImagePredictor(tmp_path / "run" / "model.onnx", workers=0).predict_paths(
        [
            manifests["hospital_a"].parent / p
            for p in pd.read_csv(manifests["hospital_a"])["image"][:3]
        ]
    )
    assert len(rows) == 3 and all(abs(r["p_mel"] + r["p_nv"] - 1) < 1e-4 for r in rows)
