"""Every pinned experiment composes into a full training config, with the objects it names."""

from __future__ import annotations

from pathlib import Path

import pytest

EXPERIMENTS = sorted(
    p.stem for p in (Path(__file__).parents[2] / "configs" / "experiment").glob("*.yaml")
)


def test_experiments_exist():
    assert {"dermamnist_28", "dermamnist_64", "ham10000_lesion_64", "isic2017_96"} <= set(
        EXPERIMENTS
    )


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_names_real_objects(experiment):
    import timm
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from skinml.data.splits import STRATEGIES

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"+experiment={experiment}"])
    assert cfg.task_name == experiment
    assert timm.is_model(cfg.model.name), cfg.model.name
    assert cfg.data.split.strategy in STRATEGIES
    assert cfg.trainer.max_epochs >= 1
    # the data source path is an interpolation resolved at run time, not a hard-coded path
    raw = OmegaConf.to_container(cfg.data.source, resolve=False)
    assert "${" in str(raw.get("root", "${")), raw
