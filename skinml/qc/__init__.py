"""Quality control across hospitals: diagnosis mix, agreement, funnel plots, shift and trends.

Pure functions live in the submodules (``funnel``, ``mix``, ``agreement``,
``cusum``, ``shift``, ``rates``); ``pipeline`` runs what the data supports and
``report`` writes the HTML. Importing this package imports nothing heavy.
"""

from skinml.qc.funnel import (
    FunnelResult,
    Overdispersion,
    estimate_overdispersion,
    funnel_limits,
    funnel_table,
)
from skinml.qc.records import QcColumns, Records, load_records, validate_records

__all__ = [
    "FunnelResult",
    "Overdispersion",
    "QcColumns",
    "Records",
    "estimate_overdispersion",
    "funnel_limits",
    "funnel_table",
    "load_records",
    "validate_records",
]
