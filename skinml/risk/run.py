"""One ``skinml-risk`` run: data -> split -> fit (nested CV, calibration) -> evaluate -> export.

Everything lands in the run directory (``metrics.json``, ``report.html``,
``risk_model.onnx`` + ``.sha256``, ``snp_match.csv``, ``test_predictions.csv``,
plots) and, when a tracker is given, in MLflow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinml.risk import evaluate as ev
from skinml.risk import report as rp
from skinml.risk.dataset import RiskDataset, feature_means, impute, reference_dosages
from skinml.risk.metadata import build_metadata
from skinml.risk.models import base_estimator, contributions
from skinml.risk.train import fit_risk_model
from skinml.stats import format_proportion

log = logging.getLogger(__name__)
HLA_TAG = "rs10484554"
# Published AUC anchors (European cohorts) for the simulated benchmark.
ANCHORS = {
    "hla_c_tag": {
        "low": 0.66,
        "high": 0.69,
        "source": "Chen 2011 PLoS One 6:e19454 (0.662); Polish cohort 2017 PMC5472287 (0.694)",
    },
    "grs": {
        "low": 0.72,
        "high": 0.78,
        "source": "Chen 2011 wGRS 0.720; Polish cohort 2017 GRS-N 0.776",
    },
}


def _plain(cfg: Any) -> Any:
    from skinml.risk.data import _plain as plain

    return plain(cfg)


def build_estimator(model_cfg: Mapping[str, Any], ds: RiskDataset) -> Any:
    """Instantiate ``model.estimator``; partial estimators receive the weights table."""
    from hydra.utils import instantiate

    est = instantiate(model_cfg["estimator"])
    if callable(est) and not hasattr(est, "fit"):
        if ds.weights is None:
            from skinml.errors import ConfigError

            raise ConfigError(
                f"model {model_cfg.get('name')!r} needs genotypes and a weights table, but data "
                f"{ds.name!r} has none",
                fix="use risk/model=lightgbm or risk/model=logistic for this data",
            )
        est = est(
            weights=dict(zip(ds.weights["snp"], ds.weights["weight"].astype(float), strict=True))
        )
    return est


def split_dataset(ds: RiskDataset, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (and patient-grouped when groups exist) train/test indices."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    counts = np.bincount(np.asarray(ds.y, int), minlength=2)
    if counts.min() < 2:
        from skinml.errors import DataError

        raise DataError(
            f"dataset {ds.name!r} has {counts[1]} cases and {counts[0]} controls; a test split "
            "and cross-validation need several of each",
            expected="both outcomes (0 and 1) in the label column, each at least a few times",
            fix="add subjects, or check the label column (data.label_column)",
        )
    idx = np.arange(len(ds.y))
    if ds.groups is not None:
        tr, te = next(
            GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(
                idx, ds.y, ds.groups
            )
        )
        return tr, te
    tr, te = train_test_split(idx, test_size=test_size, stratify=ds.y, random_state=seed)
    return np.sort(tr), np.sort(te)


def default_groups(ds: RiskDataset) -> dict[str, str]:
    """Contribution factor per feature: HLA-C tag, other SNPs, survey field."""
    from skinml.risk.schema import field_of_feature

    groups = {
        s: (f"HLA-C*06:02 tag ({HLA_TAG})" if s == HLA_TAG else "other GWAS SNPs")
        for s in ds.snp_features
    }
    groups.update(
        field_of_feature(ds.survey_fields)
        if ds.survey_fields
        else {c: c for c in ds.survey_features}
    )
    return groups


def prepare_dataset(cfg: Mapping[str, Any], out_dir: Path) -> RiskDataset:
    """Read and check the cohort, before any tracking starts, so bad input fails in seconds.

    Raises:
        DataError: unreadable or inconsistent files, or a cohort too small for the
            configured test split and cross-validation.
    """
    from skinml.risk.data import load_dataset
    from skinml.risk.train import check_enough_per_class

    cfg = _plain(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(cfg["data"], work_dir=out_dir)
    tr_idx, _ = split_dataset(ds, float(cfg["split"]["test_size"]), int(cfg["seed"]))
    folds = int(cfg["calibration"]["folds"])
    if cfg["model"].get("param_grid"):
        folds = max(folds, int(cfg["cv"]["inner_folds"]))
    check_enough_per_class(np.asarray(ds.y)[tr_idx], int(cfg["cv"]["outer_folds"]), folds)
    return ds


def run_experiment(
    cfg: Mapping[str, Any],
    out_dir: Path,
    tracker: Any | None = None,
    dataset: RiskDataset | None = None,
) -> dict[str, Any]:
    """Run one configured experiment into ``out_dir``; returns the metrics document.

    ``dataset`` is the cohort from :func:`prepare_dataset` (read here when None).
    """
    from skinml.risk.export import save_model, to_onnx, verify_export

    cfg = _plain(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(cfg["seed"])
    nb = int(cfg["report"]["n_bootstrap"])
    ds = dataset if dataset is not None else prepare_dataset(cfg, out_dir)
    ds.reports["data_fingerprint"] = _fingerprint(ds)
    tr_idx, te_idx = split_dataset(ds, float(cfg["split"]["test_size"]), seed)
    train, test = ds.subset(tr_idx), ds.subset(te_idx)
    means = feature_means(train.X, reference_dosages(ds))
    Xtr, Xte = impute(train.X, means), impute(test.X, means)
    est = build_estimator(cfg["model"], ds)
    cv = cfg["cv"]
    fit = fit_risk_model(
        est,
        Xtr,
        train.y,
        param_grid=cfg["model"].get("param_grid"),
        outer_folds=int(cv["outer_folds"]),
        inner_folds=int(cv["inner_folds"]),
        calibration=str(cfg["calibration"]["method"]),
        calibration_folds=int(cfg["calibration"]["folds"]),
        seed=seed,
        groups=train.groups,
        progress=True,
    )
    p_test = fit.model.predict_proba(Xte)[:, 1]
    g_test = test.groups
    metrics: dict[str, Any] = ev.summary_metrics(
        test.y, p_test, n_bootstrap=nb, seed=seed, groups=g_test
    )
    base = base_estimator(fit.model)
    raw = base.predict_proba(Xte)[:, 1]
    ece_before = ev.expected_calibration_error(test.y, raw)
    if fit.oof_proba is not None:
        metrics["cv_auc_oof"] = ev.auc_ci(
            train.y, fit.oof_proba, n_bootstrap=nb, seed=seed, groups=train.groups
        )
        metrics["cv_auc_per_fold"] = fit.cv_auc_per_fold
        val_y, val_p, val_src = (
            train.y,
            fit.oof_proba,
            "out-of-fold (nested CV) predictions on the training split",
        )
    else:
        val_y, val_p, val_src = (
            train.y,
            fit.model.predict_proba(Xtr)[:, 1],
            "in-sample training predictions (outer CV disabled)",
        )
    thr = ev.threshold_for_sensitivity(val_y, val_p, float(cfg["threshold"]["sensitivity_target"]))
    metrics["threshold"] = {
        **thr,
        "chosen_on": val_src,
        "test": ev.sens_spec_at(test.y, p_test, thr["threshold"]),
    }
    warnings = risk_warnings(metrics)
    prev = float(train.y.mean())
    # multiples of the prevalence *odds*: ~ multiples of the prevalence when it is small, and
    # still increasing and below 1 when it is not (e.g. PAD-UFES cancer vs not)
    odds = prev / (1.0 - prev)
    cut = [float(r * odds / (1.0 + r * odds)) for r in cfg["categories"]["relative_cutoffs"]]
    categories = {
        "names": list(cfg["categories"]["names"]),
        "cutoffs": cut,
        "rule": f"odds = {list(cfg['categories']['relative_cutoffs'])} x the training "
        f"prevalence odds (prevalence {prev:.4f})",
    }
    cat_table = ev.category_table(test.y, p_test, cut, categories["names"])
    grid = np.round(np.linspace(0.005, max(0.05, min(0.6, 4 * prev)), 40), 4)
    dca = ev.net_benefit(test.y, p_test, grid)
    metrics["net_benefit_at_threshold"] = (
        ev.net_benefit(test.y, p_test, [thr["threshold"]]).iloc[0].to_dict()
    )
    metrics["ece_before_calibration"] = ece_before
    metrics["fit_seconds_final"] = fit.fit_seconds
    if test.true_risk is not None:
        oracle = ev.auc_ci(test.y, test.true_risk, n_bootstrap=nb, seed=seed)
        metrics["oracle_auc"] = oracle
        metrics["auc_ratio_to_oracle"] = metrics["auc"]["value"] / oracle["value"]
    name = str(cfg["model"]["name"])
    if name in ANCHORS:
        a = ANCHORS[name]
        metrics["published_anchor"] = {
            **a,
            "within": a["low"] <= metrics["auc"]["value"] <= a["high"],
        }
    groups = default_groups(ds)
    n_c = min(len(Xte), 500)
    contrib = contributions(fit.model, Xte.iloc[:n_c], groups)
    onx, cal_params = to_onnx(fit.model, list(Xtr.columns))
    verification = verify_export(onx, fit.model, Xte)
    metrics["onnx_verification"] = verification
    categories_json = {**categories}
    run_id = getattr(tracker, "run_id", None)
    meta = build_metadata(
        cfg=cfg,
        ds=ds,
        fit=fit,
        features=list(Xtr.columns),
        means=means,
        cal_params=cal_params,
        metrics=metrics,
        threshold=thr,
        categories=categories_json,
        verification=verification,
        ece_before=ece_before,
        run_id=run_id,
        warnings=warnings,
    )
    model_path = save_model(onx, meta, out_dir / "risk_model.onnx")
    doc = {
        "model": name,
        "dataset": ds.name,
        "simulated": ds.simulated,
        "description": ds.description,
        "seed": seed,
        "split": {
            "train": len(tr_idx),
            "test": len(te_idx),
            "test_size": cfg["split"]["test_size"],
        },
        "metrics_test": metrics,
        "best_params": fit.best_params,
        "risk_categories": categories,
        "category_table_test": cat_table.to_dict("records"),
        "reports": {k: v for k, v in ds.reports.items() if k != "snp_match"},
        "model_file": str(model_path),
        "warnings": warnings,
    }
    (out_dir / "metrics.json").write_text(
        json.dumps(doc, indent=2, default=_json_default), encoding="utf-8"
    )
    if "snp_match" in ds.reports:
        pd.DataFrame(ds.reports["snp_match"]).to_csv(out_dir / "snp_match.csv", index=False)
    preds = pd.DataFrame(
        {
            "sample_id": test.sample_ids,
            "y": test.y,
            "risk": p_test,
            "category": ev.categorise(p_test, cut, categories["names"]),
        }
    )
    if test.true_risk is not None:
        preds["true_risk_simulated"] = test.true_risk
    preds.to_csv(out_dir / "test_predictions.csv", index=False)
    report_path = _write_report(
        out_dir, cfg, ds, test, p_test, metrics, cat_table, dca, contrib, groups
    )
    if tracker is not None:
        _log_to_tracker(tracker, metrics, out_dir, model_path, report_path)
        tracker.log_dataset(
            train.X.assign(**{ds.positive_class: train.y}),
            name=f"{ds.name}/train",
            fingerprint=ds.reports["data_fingerprint"],
            context="training",
            targets=ds.positive_class,
        )
        tracker.set_description(_description(doc, cfg))
    return doc


def risk_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Plain warnings: test AUC interval including 0.5, or a useless high-risk threshold."""
    from skinml.evaluation.verdict import auc_warning, operating_point_warnings
    from skinml.stats import proportion_ci

    auc = metrics["auc"]
    out = []
    w = auc_warning(auc["value"], auc["ci_low"], auc["ci_high"], n=int(metrics["n"]))
    if w:
        out.append(w)
    t = metrics["threshold"]["test"]
    rule = f"risk >= {metrics['threshold']['threshold']:.4f} ({metrics['threshold']['chosen_on']})"
    sens = proportion_ci(t["true_positives"], t["n_cases"])
    spec = proportion_ci(t["true_negatives"], t["n_controls"])
    out += [
        w.replace("malignancy operating point", "high-risk threshold")
        .replace("malignant cases", "cases")
        .replace("benign cases as malignant", "controls as high risk")
        for w in operating_point_warnings(sens, spec, rule)
    ]
    return out


def _description(doc: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    """The MLflow run description: model, data, test AUC with CI, warnings."""
    auc = doc["metrics_test"]["auc"]
    sim = "SIMULATED data. " if doc["simulated"] else ""
    lines = [
        f"{sim}Risk model `{doc['model']}` on **{doc['dataset']}**, seed {doc['seed']}; "
        f"{doc['split']['train']} training and {doc['split']['test']} test subjects.",
        f"Test AUC {auc['value']:.3f}, 95% CI {auc['ci_low']:.3f}-{auc['ci_high']:.3f} "
        f"(bootstrap); intervals of every metric are in `evaluation/metrics_with_ci.json`.",
    ]
    lines += [f"**Warning: {w}.**" for w in doc.get("warnings", [])]
    return "\n\n".join(lines)


def _fingerprint(ds: RiskDataset) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(ds.X, index=False).to_numpy().tobytes())
    h.update(np.asarray(ds.y).tobytes())
    return "sha256:" + h.hexdigest()[:16]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _write_report(
    out_dir: Path,
    cfg: Mapping[str, Any],
    ds: RiskDataset,
    test: RiskDataset,
    p: np.ndarray,
    metrics: dict[str, Any],
    cat_table: pd.DataFrame,
    dca: pd.DataFrame,
    contrib: pd.DataFrame,
    groups: dict[str, str],
) -> Path:
    name = cfg["model"]["name"]
    sim = "SIMULATED " if ds.simulated else ""
    plots = out_dir / "plots"
    plots.mkdir(exist_ok=True)
    curves = {name: p}
    if test.true_risk is not None:
        curves["oracle (true simulated risk)"] = test.true_risk
    figs = {
        "ROC (test split)": rp.roc_figure(
            test.y, curves, f"{sim}ROC, test split (n={len(test.y)})"
        ),
        "Calibration (test split)": rp.calibration_figure(
            ev.calibration_table(test.y, p), f"{sim}reliability, test split"
        ),
        "Decision curve (test split)": rp.decision_curve_figure(
            dca, f"{sim}decision curve, test split"
        ),
        "Contributions (test split)": rp.contributions_figure(
            contrib, f"{sim}per-factor contributions"
        ),
    }
    for title, fig in figs.items():
        fig.savefig(
            plots / (title.split(" (")[0].lower().replace(" ", "_") + ".png"),
            dpi=100,
            bbox_inches="tight",
        )
    auc = metrics["auc"]
    lines = [
        f"{sim}{ds.name}: model {name}, test AUC {auc['value']:.3f} "
        f"[{auc['ci_low']:.3f}, {auc['ci_high']:.3f}] (n={metrics['n']}, {metrics['n_cases']} "
        f"cases, seed {cfg['seed']}, {auc['n_bootstrap']} bootstrap resamples)",
        f"Brier {metrics['brier']['value']:.4f}; ECE {metrics['ece']:.4f} after / "
        f"{metrics['ece_before_calibration']:.4f} before "
        f"{cfg['calibration']['method']} calibration",
        "ONNX export max |p_onnx - p_sklearn| = "
        f"{metrics['onnx_verification']['max_abs_diff']:.2e}",
    ]
    if "oracle_auc" in metrics:
        lines.append(
            f"Oracle AUC (true simulated risk) {metrics['oracle_auc']['value']:.3f}; "
            f"ratio {metrics['auc_ratio_to_oracle']:.3f}"
        )
    t = metrics["threshold"]
    tt = t["test"]
    lines.append(
        f"High-risk threshold {t['threshold']:.4f} ({t['chosen_on']}): test sensitivity "
        + format_proportion(
            tt["true_positives"], tt["n_cases"], tt["sensitivity_ci_low"], tt["sensitivity_ci_high"]
        )
        + ", specificity "
        + format_proportion(
            tt["true_negatives"],
            tt["n_controls"],
            tt["specificity_ci_low"],
            tt["specificity_ci_high"],
        )
        + " (Wilson)"
    )
    lines += [f"WARNING: {w}" for w in risk_warnings(metrics)]
    example = contrib.head(8).copy()
    example.insert(0, "top factors", [rp.top_factors(r) for _, r in contrib.head(8).iterrows()])
    example.insert(0, "risk", p[: len(example)])
    example.insert(0, "sample_id", test.sample_ids[: len(example)])
    tables = {
        "Risk categories (test split)": cat_table,
        "Example patients: contributions (log-odds)": example,
    }
    if "snp_match_counts" in ds.reports:
        tables["SNP matching (weights table vs genotypes)"] = pd.DataFrame(
            [ds.reports["snp_match_counts"]]
        )
    if "join" in ds.reports:
        j = ds.reports["join"]
        tables["Sample join"] = pd.DataFrame(
            [{k: v for k, v in j.items() if not isinstance(v, list)}]
        )
    notes = [ds.description] if ds.description else []
    for k in ("leakage", "missingness"):
        if k in ds.reports:
            notes.append(f"{k}: {json.dumps(ds.reports[k], default=_json_default)}")
    return rp.write_report(
        out_dir / "report.html",
        title=f"{sim}psoriasis risk: {name} on {ds.name}",
        simulated=ds.simulated,
        summary_lines=lines,
        tables=tables,
        figures=figs,
        notes=notes,
    )


def interval_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Every test metric with its 95% CI and how it was computed (an MLflow table artifact)."""
    rows = []
    for k in ("auc", "average_precision", "brier", "oracle_auc", "cv_auc_oof"):
        if k in metrics:
            m = metrics[k]
            rows.append(
                {
                    "metric": f"test_{k}",
                    "value": m["value"],
                    "ci_low": m["ci_low"],
                    "ci_high": m["ci_high"],
                    "interval": "percentile bootstrap",
                    "successes": None,
                    "denominator": m["n"],
                }
            )
    t = metrics["threshold"]["test"]
    for name, k, n in (
        ("sensitivity", "true_positives", "n_cases"),
        ("specificity", "true_negatives", "n_controls"),
    ):
        rows.append(
            {
                "metric": f"test_{name}_at_threshold",
                "value": t[name],
                "ci_low": t[f"{name}_ci_low"],
                "ci_high": t[f"{name}_ci_high"],
                "interval": "wilson",
                "successes": t[k],
                "denominator": t[n],
            }
        )
    return pd.DataFrame(rows)


def _log_to_tracker(
    tracker: Any, metrics: dict[str, Any], out_dir: Path, model_path: Path, report_path: Path
) -> None:
    flat = {}
    for k in ("auc", "average_precision", "brier", "oracle_auc", "cv_auc_oof"):
        if k in metrics:
            flat[f"test_{k}"] = metrics[k]["value"]
    t = metrics["threshold"]
    flat["high_risk_threshold"] = t["threshold"]
    flat["test_sensitivity_at_threshold"] = t["test"]["sensitivity"]
    flat["test_specificity_at_threshold"] = t["test"]["specificity"]
    flat["test_ece"] = metrics["ece"]
    flat["onnx_max_abs_diff"] = metrics["onnx_verification"]["max_abs_diff"]
    if "auc_ratio_to_oracle" in metrics:
        flat["auc_ratio_to_oracle"] = metrics["auc_ratio_to_oracle"]
    tracker.log_metrics(flat)
    tracker.log_table(interval_table(metrics), "evaluation/metrics_with_ci.json")
    for name in ("metrics.json", "snp_match.csv", "test_predictions.csv"):
        if (out_dir / name).exists():
            tracker.log_artifact(out_dir / name)
    tracker.log_artifact(report_path, "report")
    tracker.log_artifact(out_dir / "plots", "plots")
    tracker.log_artifact(model_path, "model")
    tracker.log_artifact(model_path.with_name(model_path.name + ".sha256"), "model")
