"""Pure statistical functions shared by evaluation, teaching and QC."""

from skinml.stats.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha
from skinml.stats.bootstrap import BootstrapCI, bootstrap_ci, wilson_ci

__all__ = [
    "BootstrapCI",
    "bootstrap_ci",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "wilson_ci",
]
