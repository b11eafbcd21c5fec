"""Evaluation of image classifiers: metrics with CIs, calibration, thresholds, subgroups, plots.

Typical use after training (thresholds and temperature fitted on validation,
applied to test)::

    scaler = TemperatureScaler().fit(val_logits, y_val)
    val_p, test_p = scaler.predict_proba(val_logits), scaler.predict_proba(test_logits)
    picker = MalignancyThreshold(0.95).fit(
        malignant_probability(val_p, classes, malignant), np.isin(y_val, mal_idx)
    )
    ev = evaluate(y_test, test_p, classes, malignant, threshold=picker, groups=patient_ids)
    print(ev.summary())
"""

from skinml.evaluation.calibration import (
    TemperatureScaler,
    calibration_table,
    classwise_ece,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from skinml.evaluation.metrics import accuracy, balanced_accuracy, macro_auc, per_class_table
from skinml.evaluation.plots import (
    plot_confusion_matrix,
    plot_reliability,
    plot_roc_curves,
    plot_subgroups,
)
from skinml.evaluation.report import HEADLINE, Evaluation, evaluate
from skinml.evaluation.subgroups import AGE_BANDS, age_band, subgroup_table
from skinml.evaluation.thresholds import (
    MalignancyThreshold,
    malignant_probability,
    sensitivity_specificity,
    threshold_for_sensitivity,
)
from skinml.evaluation.verdict import auc_warning, evaluation_warnings, operating_point_warnings

__all__ = [
    "AGE_BANDS",
    "HEADLINE",
    "Evaluation",
    "MalignancyThreshold",
    "TemperatureScaler",
    "accuracy",
    "age_band",
    "auc_warning",
    "balanced_accuracy",
    "calibration_table",
    "classwise_ece",
    "evaluate",
    "evaluation_warnings",
    "expected_calibration_error",
    "fit_temperature",
    "macro_auc",
    "malignant_probability",
    "operating_point_warnings",
    "per_class_table",
    "plot_confusion_matrix",
    "plot_reliability",
    "plot_roc_curves",
    "plot_subgroups",
    "reliability_bins",
    "sensitivity_specificity",
    "subgroup_table",
    "threshold_for_sensitivity",
]
