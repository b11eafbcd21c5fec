"""Benchmark the four psoriasis risk models on one SIMULATED cohort (same split), plus fit time.

    .venv/bin/python experiments/risk_benchmark/run.py            # 20,000 subjects, seed 42
    .venv/bin/python experiments/risk_benchmark/run.py --n 20000 --fit-n 100000 --fit-snps 1000

Writes experiments/risk_benchmark/results.json (numbers are computed here, never typed in).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = ("hla_c_tag", "grs", "grs_survey_logistic", "lightgbm")


def compose(overrides: list[str]):
    from hydra import compose as hcompose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        # tracking is unused here; a fixed URI avoids resolving ${hydra:runtime.cwd} outside an app
        fixed = ["tracking.tracking_uri=sqlite:///unused.db"]
        return hcompose(config_name="risk", overrides=[*fixed, *overrides])


def benchmark_models(n: int, seed: int, n_bootstrap: int) -> dict:
    from skinml.risk import evaluate as ev
    from skinml.risk.data import _plain, load_dataset
    from skinml.risk.dataset import feature_means, impute, reference_dosages
    from skinml.risk.export import to_onnx, verify_export
    from skinml.risk.run import ANCHORS, build_estimator, split_dataset
    from skinml.risk.train import fit_risk_model

    base = [f"data.n_subjects={n}", f"seed={seed}"]
    cfg = _plain(compose(base))
    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset(cfg["data"], work_dir=Path(tmp))
    tr, te = split_dataset(ds, float(cfg["split"]["test_size"]), seed)
    train, test = ds.subset(tr), ds.subset(te)
    means = feature_means(train.X, reference_dosages(ds))
    Xtr, Xte = impute(train.X, means), impute(test.X, means)
    oracle = ev.auc_ci(test.y, test.true_risk, n_bootstrap=n_bootstrap, seed=seed)
    out = {
        "cohort": {
            "n_subjects": n,
            "n_train": len(tr),
            "n_test": len(te),
            "prevalence_test": float(test.y.mean()),
            "n_cases_test": int(test.y.sum()),
            "snps": len(ds.snp_features),
            "snp_match": ds.reports["snp_match_counts"],
            "simulated": True,
            "seed": seed,
        },
        "oracle_auc_test": oracle,
        "models": {},
    }
    for name in MODELS:
        mcfg = _plain(compose([*base, f"risk/model={name}"]))
        est = build_estimator(mcfg["model"], ds)
        t0 = time.perf_counter()
        fit = fit_risk_model(
            est,
            Xtr,
            train.y,
            param_grid=mcfg["model"].get("param_grid"),
            outer_folds=int(mcfg["cv"]["outer_folds"]),
            inner_folds=int(mcfg["cv"]["inner_folds"]),
            calibration=mcfg["calibration"]["method"],
            calibration_folds=int(mcfg["calibration"]["folds"]),
            seed=seed,
        )
        total = time.perf_counter() - t0
        p = fit.model.predict_proba(Xte)[:, 1]
        auc = ev.auc_ci(test.y, p, n_bootstrap=n_bootstrap, seed=seed)
        onx, _ = to_onnx(fit.model, list(Xtr.columns))
        rec = {
            "test_auc": auc,
            "cv_auc_oof": ev.auc_ci(train.y, fit.oof_proba, n_bootstrap=200, seed=seed),
            "auc_ratio_to_oracle": auc["value"] / oracle["value"],
            "brier": float(np.mean((p - test.y) ** 2)),
            "ece": ev.expected_calibration_error(test.y, p),
            "best_params": fit.best_params,
            "seconds_nested_cv_plus_final_fit": total,
            "onnx_max_abs_diff": verify_export(onx, fit.model, Xte)["max_abs_diff"],
        }
        if name in ANCHORS:
            a = ANCHORS[name]
            rec["published_anchor"] = {**a, "within": bool(a["low"] <= auc["value"] <= a["high"])}
        out["models"][name] = rec
        print(
            name,
            json.dumps({k: rec[k] for k in ("test_auc", "auc_ratio_to_oracle")}, default=float),
            flush=True,
        )
    best = max(out["models"][m]["auc_ratio_to_oracle"] for m in ("grs_survey_logistic", "lightgbm"))
    out["goal_best_of_logistic_lightgbm_ratio_ge_0_98"] = {
        "best_ratio": best,
        "met": bool(best >= 0.98),
    }
    return out


def fit_time(n: int, n_snps: int, seed: int) -> dict:
    """Wall time of one fit (no CV) on n subjects x n_snps SNPs (+ survey), 2 threads."""
    import lightgbm as lgb
    import pandas as pd

    from skinml.risk.data import _plain
    from skinml.risk.gwas import read_weights_table
    from skinml.risk.models import GrsLogisticClassifier
    from skinml.risk.schema import encode_rows
    from skinml.risk.simulate import schema_of, simulate_cohort

    cfg = _plain(compose([]))
    w = read_weights_table()
    t0 = time.perf_counter()
    c = simulate_cohort(
        w,
        cfg["data"]["survey_factors"],
        n_subjects=n,
        prevalence=0.025,
        n_null_snps=n_snps - len(w),
        seed=seed,
    )
    sim_s = time.perf_counter() - t0
    enc = encode_rows(
        c.survey.astype(str).to_dict("records"), schema_of(cfg["data"]["survey_factors"])
    )
    X = pd.concat(
        [
            pd.DataFrame(c.effect_dosages.astype(float), columns=c.panel["snp"]),
            pd.DataFrame(enc.features, columns=enc.feature_names),
        ],
        axis=1,
    )
    y = c.survey["psoriasis"].to_numpy()
    res = {
        "n_subjects": n,
        "n_snps": len(c.panel),
        "n_features": int(X.shape[1]),
        "simulate_seconds": sim_s,
        "threads": 2,
    }
    lg = _plain(compose(["risk/model=lightgbm"]))["model"]["estimator"]
    lg = {k: v for k, v in lg.items() if k != "_target_"}
    lg["n_jobs"] = 2
    t0 = time.perf_counter()
    lgb.LGBMClassifier(**lg).fit(X, y)
    res["lightgbm_seconds"] = time.perf_counter() - t0
    res["lightgbm_params"] = {k: lg[k] for k in ("n_estimators", "num_leaves", "learning_rate")}
    weights = dict(zip(c.panel["snp"], c.panel["weight"], strict=True))
    t0 = time.perf_counter()
    GrsLogisticClassifier(weights=weights).fit(X, y)
    res["grs_survey_logistic_seconds"] = time.perf_counter() - t0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--fit-n", type=int, default=100000)
    ap.add_argument("--fit-snps", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    t0 = time.perf_counter()
    res = {
        "label": "SIMULATED cohort (skinml.risk.simulate); no real individuals",
        "machine": {
            "platform": platform.platform(),
            "cpus_visible": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    res["benchmark"] = benchmark_models(args.n, args.seed, args.n_bootstrap)
    res["fit_time"] = fit_time(args.fit_n, args.fit_snps, args.seed)
    res["total_seconds"] = time.perf_counter() - t0
    args.out.write_text(json.dumps(res, indent=2, default=float), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
