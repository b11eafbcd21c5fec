"""skinml-train: train, calibrate, evaluate and export an image classifier (Hydra app).

Examples::

    skinml-train                                        # embedded ISIC sample, a few minutes on CPU
    skinml-train data=ham10000 data.image_size=64 model=small_cnn trainer.max_epochs=30
    skinml-train +experiment=dermamnist_28              # a pinned, reproducible run
    skinml-train -m optim.lr=0.001,0.003 model=resnet18,small_cnn   # a sweep (Hydra multirun)
    torchrun --nproc-per-node 2 -m skinml.cli.train trainer.device=cpu   # DDP
    skinml-train hydra.run.dir=outputs/skinml-train/RUN resume=auto      # resume after a crash
    skinml-train --cfg job                              # print the composed config
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from skinml.cli_errors import run_command

#: Loader fixes worded for Python, said as the config overrides a skinml-train user types.
FIXES = {
    "on_missing=": "restore the files or fix data.source's path/root, or leave these rows out "
    "with +data.source.on_missing=exclude (they are listed in the dataset card)",
}


@hydra.main(version_base="1.3", config_path="pkg://skinml.configs", config_name="train")
def _main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from skinml.training.pipeline import run

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    outcomes: list = []
    status = run_command("skinml-train", lambda: outcomes.append(run(cfg, run_dir)), fixes=FIXES)
    if status:
        sys.exit(status)  # the message is printed; Hydra would add a traceback
    outcome = outcomes[0]
    if outcome.mlflow_run_id is None:  # a non-zero DDP rank
        return None
    _print_summary(outcome)
    return outcome.metrics.get("val_balanced_accuracy")  # the objective for sweepers


def _print_summary(outcome) -> None:
    m = outcome.metrics

    def ci(name: str) -> str:
        v = m.get(name)
        if v is None:
            return "n/a"
        lo, hi = m.get(f"{name}_ci_low"), m.get(f"{name}_ci_high")
        return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else f"{v:.3f}"

    lines = [
        "",
        "skinml-train finished.",
        f"  test accuracy          {ci('test_accuracy')}  (95% bootstrap CI)",
        f"  test balanced accuracy {ci('test_balanced_accuracy')}",
        f"  test macro AUC         {ci('test_macro_auc')}",
        f"  test malignant sens.   {ci('test_malignant_sensitivity')}"
        " (at the threshold chosen on validation)",
        "  ECE before/after temperature scaling: "
        f"{m.get('test_ece_before_calibration', float('nan')):.3f} / "
        f"{m.get('test_ece_after_calibration', float('nan')):.3f}",
        "",
        f"  run directory : {outcome.run_dir}",
        f"  plots         : {outcome.plots_dir}",
        f"  model bundle  : {outcome.bundle_path}",
    ]
    if outcome.onnx_path is not None:
        lines.append(f"  ONNX model    : {outcome.onnx_path}")
        lines.append(f"  predict with  : skinml-predict {outcome.onnx_path} IMAGES -o out.csv")
    lines += [
        f"  MLflow run    : {outcome.mlflow_run_id} in {outcome.tracking_uri}",
        f"  browse runs   : mlflow ui --backend-store-uri {outcome.tracking_uri}",
    ]
    print("\n".join(lines))


def main() -> None:
    """Console-script entry point: check the overrides (exit 2 with a hint), then run Hydra."""
    from skinml.cli.overrides import check_overrides, check_resume

    def check() -> None:
        check_resume(sys.argv[1:])
        check_overrides("train", sys.argv[1:])

    status = run_command("skinml-train", check)
    if status:
        sys.exit(status)
    _main()


if __name__ == "__main__":
    main()
