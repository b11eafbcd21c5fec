"""Numbers as a reader should see them in a report: p-values, counts, rates.

A p-value printed as ``p = 0`` is false (no test gives exactly zero) and a count printed
as ``1994.000`` looks like a measurement; these helpers are the one place that decides.
"""

from __future__ import annotations

import math


def format_p(p: float, *, floor: float = 0.001) -> str:
    """``"p < 0.001"`` below ``floor``, else ``"p = 0.012"`` (two significant digits).

    Non-finite input (no test was possible) gives ``"p not computed"``.
    """
    if p is None or not math.isfinite(p):
        return "p not computed"
    if p < floor:
        return f"p < {floor:g}"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def format_p_cell(p: float) -> str:
    """A p-value for a table cell: ``"< 0.001"``, ``"0.012"`` or ``""`` when not computed."""
    text = format_p(p)
    return "" if text == "p not computed" else text.removeprefix("p ").removeprefix("= ")
