"""Real-data checks for skinml-risk: UCI Dermatology and the PAD-UFES-20 missingness leak.

    .venv/bin/python experiments/risk_realdata/run.py

Writes experiments/risk_realdata/results.json (computed here; nothing typed in).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SKINML_SHARED_DATA", HERE.parents[2] / "shared" / "data"))


def run(data: str, model: str, extra: list[str], tmp: Path) -> dict:
    from hydra import compose, initialize_config_module

    from skinml.risk.run import run_experiment

    overrides = [
        f"risk/data={data}",
        f"risk/model={model}",
        f"shared_data={SHARED}",
        "tracking.tracking_uri=sqlite:///unused.db",
        *extra,
    ]
    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="risk", overrides=overrides)
    doc = run_experiment(cfg, tmp / f"{data}_{model}_{len(extra)}")
    m = doc["metrics_test"]
    return {
        "overrides": overrides[:2] + extra,
        "test_auc": m["auc"],
        "cv_auc_oof": m.get("cv_auc_oof"),
        "brier": m["brier"],
        "ece": m["ece"],
        "n_test": m["n"],
        "n_cases_test": m["n_cases"],
        "onnx_max_abs_diff": m["onnx_verification"]["max_abs_diff"],
        "reports": doc["reports"],
    }


def main() -> None:
    from skinml.risk.realdata import uci_sixclass_cv_accuracy

    res = {"machine": {"platform": platform.platform(), "cpus_visible": os.cpu_count()}, "seed": 42}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        res["uci_psoriasis_vs_rest"] = {
            m: run("uci_dermatology", m, [], tmp) for m in ("logistic", "lightgbm")
        }
        res["uci_six_class_10fold"] = uci_sixclass_cv_accuracy(
            SHARED / "uci_dermatology", folds=10, seed=42
        )
        res["pad_ufes_cancer_vs_not"] = {
            "complete_cases_guarded": run("pad_ufes", "lightgbm", [], tmp),
            "keep_missing_leaky": run("pad_ufes", "lightgbm", ["data.missing_policy=keep"], tmp),
        }
    (HERE / "results.json").write_text(json.dumps(res, indent=2, default=float), encoding="utf-8")
    print(
        json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1, default=float)[:3000]
    )


if __name__ == "__main__":
    main()
