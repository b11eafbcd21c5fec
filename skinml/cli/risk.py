"""``skinml-risk``: train, evaluate, calibrate and export a psoriasis risk model (Hydra).

Examples::

    skinml-risk                                                   # simulated cohort, GRS + survey
    skinml-risk risk/data=simulated risk/model=lightgbm data.n_subjects=20000
    skinml-risk risk/data=uci_dermatology risk/model=logistic
    skinml-risk risk/data=files data.genotypes=cohort.vcf.gz data.survey=survey.csv
    skinml-risk mode=simulate data.n_subjects=5000                # only write a simulated cohort
    skinml-risk --multirun risk/model=hla_c_tag,grs,grs_survey_logistic,lightgbm

Outputs go to the Hydra run dir (resolved config, metrics.json, report.html,
risk_model.onnx + .sha256, plots) and to MLflow (sqlite by default).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def run_from_config(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Thin glue shared by the CLI and tests: write the resolved config, then train or simulate."""
    from hydra.utils import instantiate

    from skinml.risk.data import simulate_from_config
    from skinml.risk.run import prepare_dataset, run_experiment

    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    (out_dir / "resolved_config.yaml").write_text(resolved, encoding="utf-8")
    if cfg.mode == "simulate":
        paths = simulate_from_config(cfg, out_dir / "simulated_cohort")
        return {"mode": "simulate", "files": {k: str(v) for k, v in paths.items()}}
    if cfg.mode != "train":
        from skinml.errors import ConfigError

        raise ConfigError(f"unknown mode {cfg.mode!r}", expected="train or simulate")
    dataset = prepare_dataset(cfg, out_dir)  # bad input fails here, before MLflow starts
    tracker = instantiate(cfg.tracking)
    run_name = f"{cfg.data.name}-{cfg.model.name}-seed{cfg.seed}"
    with tracker.start(
        run_name, tags={"task": "tabular_risk", "simulated": str(cfg.data.kind == "simulated")}
    ):
        tracker.log_params(OmegaConf.to_container(cfg, resolve=True))
        doc = run_experiment(cfg, out_dir, tracker=tracker, dataset=dataset)
        tracker.log_provenance(resolved)
        tracker.log_artifact(out_dir / "resolved_config.yaml", "config")
    doc["mlflow_run_id"] = tracker.run_id
    return doc


@hydra.main(version_base="1.3", config_path="pkg://skinml.configs", config_name="risk")
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from skinml.cli_errors import run_command

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    docs: list[dict[str, Any]] = []
    status = run_command("skinml-risk", lambda: docs.append(run_from_config(cfg, out_dir)))
    if status:
        sys.exit(status)  # the message is printed; Hydra would add a traceback
    doc = docs[0]
    if doc.get("mode") == "simulate":
        print(f"simulated cohort written to {out_dir / 'simulated_cohort'} (SIMULATED data)")
        for name, path in doc["files"].items():
            print(f"  {name}: {path}")
        return
    m = doc["metrics_test"]["auc"]
    print(
        f"{'SIMULATED ' if doc['simulated'] else ''}{doc['dataset']} / {doc['model']}: test AUC "
        f"{m['value']:.3f}, 95% CI {m['ci_low']:.3f}-{m['ci_high']:.3f}\n"
        f"  metrics: {out_dir / 'metrics.json'}\n  report:  {out_dir / 'report.html'}\n"
        f"  model:   {doc['model_file']} (+ .sha256)\n  MLflow run: {doc['mlflow_run_id']} "
        f"({cfg.tracking.tracking_uri})\n"
        f"  predict: skinml-predict {doc['model_file']} patients.csv -o risk.csv"
    )
    from skinml.modelfile.metadata import warning_line

    for w in doc.get("warnings", []):
        print(warning_line(w))


def main() -> None:
    """Console-script entry point (``skinml-risk``): check the overrides, then run Hydra."""
    from skinml.cli.overrides import check_overrides
    from skinml.cli_errors import run_command

    status = run_command("skinml-risk", lambda: check_overrides("risk", sys.argv[1:]))
    if status:
        sys.exit(status)
    _app()


if __name__ == "__main__":
    main()
