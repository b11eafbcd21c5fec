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


def summary_lines(outcome) -> list[str]:
    """The closing console summary; plain warnings come last, where they are read."""
    m = outcome.metrics
    test = outcome.test
    h = test.headline if test is not None else {}

    def ci(name: str) -> str:
        key = name.removeprefix("test_")
        if key in h:
            return str(h[key])
        v = m.get(name)
        return "n/a" if v is None else f"{v:.3f}"

    threshold = m.get("malignant_threshold")
    at = (
        f"flag p_malignant >= {threshold:.4f}, chosen on validation"
        if threshold is not None
        else "arg-max rule"
    )
    best = "" if outcome.best_epoch is None else f", best epoch {outcome.best_epoch}"
    lines = [
        "",
        f"skinml-train finished{best}.",
        f"  test accuracy          {ci('test_accuracy')}  (arg-max class; Wilson CI)",
        f"  test balanced accuracy {ci('test_balanced_accuracy')}  (bootstrap CI)",
        f"  test macro AUC         {ci('test_macro_auc')}  (bootstrap CI)",
        f"  test malignant sens.   {ci('test_malignant_sensitivity')}  ({at}; Wilson CI)",
        f"  test malignant spec.   {ci('test_malignant_specificity')}",
        "  ECE before/after temperature scaling: "
        f"{m.get('test_ece_before_calibration', float('nan')):.3f} / "
        f"{m.get('test_ece_after_calibration', float('nan')):.3f} (plug-in); "
        f"bias-corrected {ci('test_ece')}",
        "",
        f"  run directory : {outcome.run_dir}",
        f"  run report    : {outcome.run_dir / 'index.html'}  (open it in a browser)",
        f"  plots         : {outcome.plots_dir}",
        f"  model bundle  : {outcome.bundle_path}",
    ]
    if outcome.onnx_path is not None:
        lines.append(f"  ONNX model    : {outcome.onnx_path}")
        lines.append(f"  model card    : {outcome.onnx_path.with_suffix('.card.html')}")
        lines.append(f"  predict with  : skinml-predict {outcome.onnx_path} IMAGES -o out.csv")
    lines += [
        f"  MLflow run    : {outcome.mlflow_run_id} in {outcome.tracking_uri}",
        f"  browse runs   : mlflow ui --backend-store-uri {outcome.tracking_uri}",
    ]
    if outcome.warnings:
        from skinml.modelfile.metadata import warning_line

        lines.append("")
        lines += [warning_line(w) for w in outcome.warnings]
    return lines


def _print_summary(outcome) -> None:
    print("\n".join(summary_lines(outcome)))


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
