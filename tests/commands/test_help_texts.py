"""``--help`` of the Hydra commands teaches: a description, examples, and every option that exists.

The group lists are written by hand (Hydra's automatic list would show skinml-train's groups
in skinml-risk and the reverse, since both read one config package), so these tests keep
them true: every option file in ``configs/`` appears in its command's help, and neither
command lists the other's groups.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _help(module: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _groups_section(text: str) -> str:
    return text.split("== Config groups", 1)[1].split("== Examples ==", 1)[0]


def _options(group: str) -> set[str]:
    return {p.stem for p in (CONFIGS / group).glob("*.yaml")}


@pytest.fixture(scope="module")
def train_help() -> str:
    return _help("skinml.cli.train")


@pytest.fixture(scope="module")
def risk_help() -> str:
    return _help("skinml.cli.risk")


def test_train_help_describes_the_command_and_lists_every_option(train_help):
    assert train_help.startswith("skinml-train: train, calibrate, evaluate and export")
    assert "== Examples ==" in train_help and "skinml-train +experiment=" in train_help
    groups = _groups_section(train_help)
    for group in (
        "data",
        "model",
        "augmentation",
        "optim",
        "scheduler",
        "trainer",
        "evaluation",
        "tracking",
        "export",
        "experiment",
    ):
        missing = {o for o in _options(group) if o not in groups}
        assert not missing, f"skinml-train --help does not list {group} options {missing}"
    assert "risk/" not in groups
    assert "== Config ==" in train_help and "image_size" in train_help  # the composed config


def test_risk_help_lists_only_its_own_groups_and_the_override_syntax(risk_help):
    assert risk_help.startswith("skinml-risk: train, evaluate, calibrate and export")
    groups = _groups_section(risk_help)
    for group in ("risk/data", "risk/model"):
        missing = {o for o in _options(group) if o not in groups}
        assert not missing, f"skinml-risk --help does not list {group} options {missing}"
    for foreign in ("augmentation", "trainer", "scheduler", "experiment", "optim"):
        assert foreign not in groups
    assert "risk/model=lightgbm" in risk_help
