"""The model-file document (``ModelMetadata``, task ``tabular_risk``) of a fitted risk model.

Everything the predictor needs to use the model correctly travels here:
feature order, weights table and version, survey schema, imputation means,
calibration, the ``high_risk`` threshold and how it was chosen, categories,
contribution coefficients, metrics with CIs and provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from skinml.risk.dataset import RiskDataset
from skinml.risk.models import GrsLogisticClassifier, base_estimator
from skinml.risk.train import FitResult


def _plain(cfg: Any) -> Any:
    from skinml.risk.data import _plain as plain

    return plain(cfg)


def _default_groups(ds: RiskDataset) -> dict[str, str]:
    from skinml.risk.run import default_groups

    return default_groups(ds)


def _metric(d: Mapping[str, Any], split: str, seed: int) -> Any:
    from skinml.modelfile import MetricWithCI

    return MetricWithCI(
        value=float(d["value"]),
        ci_low=float(d["ci_low"]),
        ci_high=float(d["ci_high"]),
        split=split,
        n=int(d["n"]),
        n_bootstrap=int(d["n_bootstrap"]),
        seed=seed,
    )


def build_metadata(
    *,
    cfg: Mapping[str, Any],
    ds: RiskDataset,
    fit: FitResult,
    features: list[str],
    means: dict[str, float],
    cal_params: dict[str, Any],
    metrics: dict[str, Any],
    threshold: dict[str, float],
    categories: dict[str, Any],
    verification: dict[str, float],
    ece_before: float | None,
    run_id: str | None,
    warnings: list[str] | tuple[str, ...] = (),
) -> Any:
    """The model-file document for a tabular risk model (task ``tabular_risk``).

    ``warnings`` (e.g. a test AUC interval including 0.5) travel as
    ``ModelMetadata.warnings``; skinml-predict prints them after scoring.
    """
    from skinml.modelfile import Calibration, ModelMetadata, OperatingThreshold, Provenance
    from skinml.tracking.provenance import git_commit, package_versions, utc_now

    try:
        from importlib.metadata import version

        skv = version("skinml")
    except Exception:
        skv = "unknown"
    base = base_estimator(fit.model)
    if isinstance(base, GrsLogisticClassifier):
        contrib = {
            "method": "linear",
            "scale": "log-odds before calibration",
            "coef": base.coef_full_.tolist(),
            "intercept": base.intercept_full_,
            "feature_mean": base.feature_mean_.tolist(),
            "groups": base.contribution_groups(),
            "note": "contribution = coefficient x (value - training mean), summed per factor; "
            "computed in numpy by the predictor",
        }
    else:
        contrib = {
            "method": "none_in_predictor",
            "groups": _default_groups(ds),
            "note": "LightGBM contributions (pred_contrib, TreeSHAP) are in the training report; "
            "the ONNX predictor does not recompute them. Use a logistic model where per-patient "
            "factors are needed at prediction time.",
        }
    weights_rows = []
    if ds.weights is not None:
        for r in ds.weights.to_dict("records"):
            weights_rows.append(
                {
                    k: (None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in r.items()
                    if k
                    in (
                        "snp",
                        "effect_allele",
                        "other_allele",
                        "weight",
                        "effect_allele_freq",
                        "chrom",
                        "pos",
                    )
                }
            )
    cal_method = "platt" if cal_params["method"] == "platt" else "isotonic"
    model_name = str(cfg["model"]["name"])
    sim = " Trained on SIMULATED data: not validated on patients." if ds.simulated else ""
    return ModelMetadata(
        task="tabular_risk",
        classes=(ds.negative_class, ds.positive_class),
        malignant=(ds.positive_class,),
        provenance=Provenance(
            skinml_version=skv,
            created_utc=utc_now(),
            git_commit=git_commit(),
            data_fingerprint=ds.reports.get("data_fingerprint"),
            dataset=ds.name,
            mlflow_run_id=run_id,
            training_config=_plain(cfg),
            package_versions=package_versions(),
        ),
        inputs={"features": f"[N, {len(features)}] imputed features in extra.feature_names order"},
        outputs={
            "risk": f"[N] calibrated probability of {ds.positive_class}",
            "score": "[N] base-model log-odds read by the calibrator",
        },
        calibration=Calibration(
            method=cal_method,
            fitted_on="out-of-fold predictions of the training split "
            "(CalibratedClassifierCV, ensemble=False)",
            ece_before=ece_before,
            ece_after=float(metrics["ece"]),
            applied_in_graph=True,
        ),
        thresholds=(
            OperatingThreshold(
                name="high_risk",
                threshold=float(threshold["threshold"]),
                rule=f"highest threshold with sensitivity >= "
                f"{cfg['threshold']['sensitivity_target']} on out-of-fold predictions",
                chosen_on="training split, out-of-fold (nested CV)",
                validation_sensitivity=threshold.get("sensitivity"),
                validation_specificity=threshold.get("specificity"),
            ),
        ),
        metrics={
            k: _metric(metrics[k], "test", int(cfg["seed"]))
            for k in ("auc", "average_precision", "brier")
        },
        intended_use=f"Research estimate of {ds.positive_class} risk from genotypes and "
        f"survey answers.{sim}",
        limitations="Effect sizes from European-ancestry GWAS; not a diagnostic test; "
        "contributions are associations, not causes." + sim,
        warnings=tuple(warnings),
        extra={
            "model_name": model_name,
            "feature_names": features,
            "snp_features": ds.snp_features,
            "survey_fields": ds.survey_fields,
            "weights_table": weights_rows,
            "weights_version": ds.weights_version,
            "ambiguous_policy": ds.ambiguous_policy,
            "freq_margin": ds.freq_margin,
            "ambiguous_resolved": ds.reports.get("ambiguous_resolved", {}),
            "imputation_means": {f: means[f] for f in features},
            "risk_categories": categories,
            "contributions": contrib,
            "calibration_params": cal_params,
            "onnx_verification": verification,
            "simulated_training_data": ds.simulated,
            "id_column": "sample_id",
            "best_params": fit.best_params,
        },
    )
