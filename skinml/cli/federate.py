"""skinml-federate: one image classifier trained across hospitals on Flower (Hydra app).

Examples::

    skinml-federate data=ham10000 federation.rounds=10          # simulation, one client per site
    skinml-federate federation=fedprox federation.local_epochs=2
    skinml-federate federation.privacy.dp.noise_multiplier=1.0  # central DP, epsilon reported
    skinml-federate federation.mode=deployment federation.deployment.superlink=HOST:8000
    skinml-federate hydra.run.dir=outputs/skinml-federate/RUN resume=auto   # after a restart
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from skinml.cli.train import FIXES
from skinml.cli_errors import run_command


@hydra.main(version_base="1.3", config_path="pkg://skinml.configs", config_name="federate")
def _main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from skinml.federated.launch import run

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    outcomes: list = []
    status = run_command("skinml-federate", lambda: outcomes.append(run(cfg, run_dir)), fixes=FIXES)
    if status:
        sys.exit(status)
    print("\n".join(summary_lines(outcomes[0])))
    return outcomes[0]["metrics"].get("val_balanced_accuracy")


def summary_lines(outcome: dict) -> list[str]:
    """The closing console summary: pooled and per-site test figures, failures, privacy."""
    m = outcome["metrics"]

    def ci(prefix: str, name: str, figures: dict) -> str:
        v = figures.get(f"{prefix}{name}")
        if v is None:
            return "n/a"
        lo, hi = figures.get(f"{prefix}{name}_ci_low"), figures.get(f"{prefix}{name}_ci_high")
        return f"{v:.3f}" + ("" if lo is None else f" [{lo:.3f}, {hi:.3f}]")

    lines = [
        "",
        f"skinml-federate finished: {len(outcome['rounds'])} rounds, sites {outcome['sites']}.",
        f"  pooled test balanced accuracy {ci('test_', 'balanced_accuracy', m)}",
        f"  pooled test macro AUC         {ci('test_', 'macro_auc', m)}",
    ]
    for site, figures in outcome["per_site_test"].items():
        lines.append(
            f"  {site:<20} bal. acc {ci('test_', 'balanced_accuracy', figures)}  "
            f"AUC {ci('test_', 'macro_auc', figures)}"
        )
    if outcome.get("bytes_per_round"):
        lines.append(f"  bytes per round: {outcome['bytes_per_round'][-1]:,}")
    if outcome.get("privacy"):
        p = outcome["privacy"]
        lines.append(f"  differential privacy: epsilon {p['epsilon']:.2f} at delta {p['delta']:g}")
    for f in outcome.get("failed", []):
        lines.append(f"  failed: {f['site']} ({f['phase']}): {f['reason'].splitlines()[-1]}")
    lines += [
        "",
        f"  run directory : {outcome['run_dir']}",
        f"  model bundle  : {outcome['bundle']}",
    ]
    if outcome.get("onnx"):
        lines.append(f"  ONNX model    : {outcome['onnx']}")
        lines.append(f"  predict with  : skinml-predict {outcome['onnx']} IMAGES -o out.csv")
    lines.append(f"  MLflow run    : {outcome['mlflow_run_id']} in {outcome['tracking_uri']}")
    return lines


def main() -> None:
    """Console-script entry point: check the overrides (exit 2 with a hint), then run Hydra."""
    from skinml.cli.overrides import check_overrides

    status = run_command("skinml-federate", lambda: check_overrides("federate", sys.argv[1:]))
    if status:
        sys.exit(status)
    _main()


if __name__ == "__main__":
    main()
