"""Start a federation: on one machine through Flower's simulation engine, or as a run
submitted to a SuperLink whose SuperNodes run at the hospitals.

Simulation: the data config's manifest is divided by ``federation.site_column``; every
site's split is computed and checked here before the engine starts (a bad site stops
the run in a second, not after Ray has started), and written as ``split_manifest.csv``.

Deployment: a small Flower app (``pyproject.toml`` naming skinml's ServerApp/ClientApp,
the resolved config in its run config) is written to ``<run dir>/flower_app`` and
submitted with ``flwr run``; each hospital's SuperNode checks its own data when the
server asks, before round 1.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from skinml.errors import ConfigError
from skinml.federated.rounds import FederationError
from skinml.federated.server_app import OUTCOME, make_server_app

log = logging.getLogger(__name__)


def run(cfg: Any, run_dir: str | Path) -> dict[str, Any]:
    """Run one federation described by a composed ``federate`` config; returns its outcome."""
    from omegaconf import OmegaConf

    from skinml.federated.local import check_federated_config

    check_federated_config(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    (run_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")
    mode = str(cfg.federation.mode)
    if mode == "simulation":
        simulate(cfg, run_dir)
    elif mode == "deployment":
        deploy(cfg, run_dir)
    else:
        raise ConfigError(
            f"federation.mode={mode!r} is not a mode",
            expected="'simulation' or 'deployment'",
        )
    return json.loads((run_dir / OUTCOME).read_text(encoding="utf-8"))


def simulation_sites(cfg: Any, run_dir: Path) -> list[str]:
    """Divide the manifest into sites, split and check each, write ``split_manifest.csv``."""
    from hydra.utils import instantiate

    from skinml.data.manifest import write_manifest
    from skinml.federated.sites import check_sites, pooled_split, site_names
    from skinml.training.data_setup import as_manifest, labels_as_classes

    classes = [str(c) for c in cfg.data.classes]
    column = str(cfg.federation.site_column)
    manifest = labels_as_classes(as_manifest(instantiate(cfg.data.source)), classes)
    present = site_names(manifest, column)
    wanted = [str(s) for s in (cfg.federation.sites or present)]
    unknown = sorted(set(wanted) - set(present))
    if unknown:
        raise ConfigError(
            f"federation.sites names {unknown}, which the data does not have",
            column="federation.sites",
            expected=f"some of {present}",
        )
    needed = int(cfg.federation.strategy.min_available_nodes)
    if len(wanted) < needed:
        raise ConfigError(
            f"the data has {len(wanted)} site(s) {wanted} in column {column!r}, and the "
            f"federation needs at least {needed} (federation.strategy.min_available_nodes)",
            column=column,
            fix="fill the site column with each image's hospital (rows without one are read "
            "as 'unknown'), or set federation.site_column to the column that names it",
        )
    pooled, counts = pooled_split(manifest, wanted, classes, cfg.data.split, int(cfg.seed), column)
    for w in check_sites(counts, cfg.federation.checks):
        log.warning("%s", w)
    write_manifest(pooled, run_dir / "split_manifest.csv")
    return wanted


def simulate(cfg: Any, run_dir: Path) -> None:
    """One client per site on this machine (Flower's Ray-based simulation engine)."""
    from flwr.simulation import run_simulation

    from skinml.federated.client_app import make_client_app

    sites = simulation_sites(cfg, run_dir)
    cpus = int(cfg.federation.simulation.client_cpus)
    if cfg.trainer.get("threads") is None:
        cfg.trainer.threads = cpus
    errors: list[BaseException] = []
    server = make_server_app(cfg, run_dir, sites, errors)
    mods = []
    if cfg.federation.privacy.secagg:
        from flwr.client.mod import secaggplus_mod

        mods.append(secaggplus_mod)
    client = make_client_app(mods)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=len(sites),
        backend_name=str(cfg.federation.simulation.backend),
        backend_config={
            "client_resources": {"num_cpus": cpus, "num_gpus": 0.0},
            "init_args": {"include_dashboard": False, "log_to_driver": True},
        },
    )
    if errors:
        raise errors[0]
    if not (run_dir / OUTCOME).is_file():
        raise FederationError(
            "the simulation ended without a result",
            fix="see the Flower log above for the reason",
        )


def app_pyproject(cfg: Any, run_dir: Path) -> str:
    """The ``pyproject.toml`` of the Flower app submitted to a SuperLink."""
    from omegaconf import OmegaConf

    client = "app_secagg" if cfg.federation.privacy.secagg else "app"
    text = OmegaConf.to_yaml(cfg).replace("'''", "''\\'")
    return f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "skinml-federation"
version = "1.0.0"
description = "skinml federated training (generated by skinml-federate)"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "skinml"

[tool.flwr.app.components]
serverapp = "skinml.federated.server_app:app"
clientapp = "skinml.federated.client_app:{client}"

[tool.flwr.app.config]
run-dir = {json.dumps(str(run_dir.resolve()))}
sites = ""
skinml-config = '''
{text}'''
"""


def flower_home(cfg: Any, run_dir: Path) -> Path:
    """A Flower config folder naming the SuperLink (``flwr run`` reads it)."""
    dep = cfg.federation.deployment
    home = run_dir / "flwr_home"
    home.mkdir(parents=True, exist_ok=True)
    insecure = "true" if dep.insecure else "false"
    (home / "config.toml").write_text(
        "[superlink]\n"
        'default = "skinml"\n\n'
        "[superlink.skinml]\n"
        f'address = "{dep.superlink}"\n'
        f"insecure = {insecure}\n",
        encoding="utf-8",
    )
    return home


def deploy(cfg: Any, run_dir: Path) -> None:
    """Submit the federation to a running SuperLink with ``flwr run`` and wait for it."""
    app = run_dir / "flower_app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "pyproject.toml").write_text(app_pyproject(cfg, run_dir), encoding="utf-8")
    (app / "README.md").write_text(
        "Generated by skinml-federate: the ServerApp and ClientApp are skinml's own.\n",
        encoding="utf-8",
    )
    env = {**os.environ, "FLWR_HOME": str(flower_home(cfg, run_dir))}
    flwr = Path(sys.executable).with_name("flwr")
    command = [str(flwr) if flwr.exists() else "flwr", "run", str(app), "skinml"]
    if cfg.federation.deployment.stream:
        command.append("--stream")
    log.info("submitting to the SuperLink at %s", cfg.federation.deployment.superlink)
    done = subprocess.run(command, env=env, check=False)
    error = run_dir / "federation_error.txt"
    if error.is_file():
        raise FederationError(
            f"the federation stopped on the server: {error.read_text(encoding='utf-8')}",
            fix="see the SuperLink log for details",
        )
    if done.returncode != 0 or not (run_dir / OUTCOME).is_file():
        raise FederationError(
            f"flwr run exited with status {done.returncode} and no result in {run_dir}",
            fix="check that the SuperLink runs at federation.deployment.superlink and that "
            "the hospitals' SuperNodes are connected (flwr ls, SuperLink log)",
        )
