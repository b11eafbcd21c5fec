"""Pure statistical functions shared by evaluation, teaching and QC."""

from skinml.stats.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from skinml.stats.bootstrap import BIAS_CORRECTED, PERCENTILE, BootstrapCI, bootstrap_ci
from skinml.stats.proportion import (
    ProportionCI,
    format_proportion,
    proportion_ci,
    widen_for_clusters,
    wilson_ci,
)

__all__ = [
    "BIAS_CORRECTED",
    "PERCENTILE",
    "BootstrapCI",
    "ProportionCI",
    "bootstrap_ci",
    "cohen_kappa",
    "fleiss_kappa",
    "format_proportion",
    "krippendorff_alpha",
    "proportion_ci",
    "widen_for_clusters",
    "wilson_ci",
]
