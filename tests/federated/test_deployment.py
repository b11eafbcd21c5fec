"""Separate processes on localhost: one SuperLink, one SuperNode per hospital, 2 rounds.

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


def test_superlink_and_one_supernode_per_hospital(two_sites, tmp_path):
    frame = pd.read_csv(two_sites)
    manifests = {}
    for site in SITES:
        own = frame[frame["site"] == site].copy()
        own["image"] = [str(two_sites.parent / p) for p in own["image"]]
        manifests[site] = tmp_path / f"{site}.csv"
        own.to_csv(manifests[site], index=False)
    link_port = free_port()
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
            procs.append(
                _start(
                    [str(BIN / "flower-supernode"), "--insecure",
                     "--superlink", f"127.0.0.1:{link_port}", "--port", str(free_port()),
                     "--node-config", node_config],
                    tmp_path / f"node_{site}.log",
                )
            )  # fmt: skip
        _wait_for(link_log, "Activated node_id", count=len(SITES))
        overrides = federate_overrides(
            two_sites,
            tmp_path,
            "federation.mode=deployment",
            f"federation.deployment.superlink=127.0.0.1:{link_port}",
            "hydra.run.dir=" + str(tmp_path / "run"),
        )
        # the researcher's command; data.source is not read in a deployment
        done = subprocess.run(
            [str(BIN / "skinml-federate"), *overrides],
            capture_output=True,
            text=True,
            timeout=500,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
    finally:
        _stop(procs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skinml-federate finished: 2 rounds, sites ['hospital_a', 'hospital_b']" in done.stdout
    import json

    outcome = json.loads((tmp_path / "run" / "federation.json").read_text())
    assert [r["round"] for r in outcome["rounds"]] == [1, 2]
    assert outcome["failed"] == []
    assert set(outcome["per_site_test"]) == set(SITES)
    assert outcome["metrics"]["test_macro_auc"] > 0.75
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
