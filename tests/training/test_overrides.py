"""Hydra overrides are checked before a run: misspelt keys get a suggestion, resume=auto a dir."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("hydra")

from skinml.cli.overrides import check_overrides, check_resume
from skinml.errors import ConfigError


def test_misspelt_key_suggests_the_real_one():
    with pytest.raises(ConfigError, match=r"did you mean 'trainer\.max_epochs'"):
        check_overrides("train", ["trainer.max_epoch=3"])


def test_misspelt_group_in_risk_suggests_model():
    with pytest.raises(ConfigError, match="'model'"):
        check_overrides("risk", ["modle=lightgbm"])


def test_good_overrides_and_sweeps_pass():
    check_overrides("train", ["trainer.max_epochs=1", "hydra.run.dir=/tmp/x"])
    check_overrides("train", ["-m", "optim.lr=0.1,0.2"])
    check_overrides("train", ["--config-dir", "/elsewhere", "only_there.key=1"])


def test_resume_auto_needs_the_run_dir():
    with pytest.raises(ConfigError, match=r"hydra\.run\.dir"):
        check_resume(["resume=auto"])
    check_resume(["resume=auto", "hydra.run.dir=outputs/run"])


def test_train_command_exits_2_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run(
        [sys.executable, "-m", "skinml.cli.train", "trainer.max_epoch=3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "max_epochs" in r.stderr
