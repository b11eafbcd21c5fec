"""The summary a quality lead reads first, as plain lines (report verdict, CLI, summary.json).

What is *not* computed and why belongs here, not in grey print further down: a region
without malignant diagnoses gets no malignancy indicators, and a region of fewer than
ten hospitals gets exact funnel limits whose flags may be inflated.
"""

from __future__ import annotations

from collections.abc import Iterable

from skinml.qc.funnel import MIN_UNITS_OVERDISPERSION

NOT_A_LEAGUE_TABLE = (
    "Hospitals are listed by name, never ranked. A point outside a funnel limit means "
    "'more different than chance explains at this volume', not 'worse'; check case mix, "
    "referral pathway and data completeness before talking about skill."
)


def malignant_line(malignant_set: list[str], codes: Iterable[str], diagnoses: list[str]) -> str:
    """One line: which malignant codes are present, or why malignancy indicators are left out."""
    if malignant_set:
        return f"Malignancy indicators use the malignant codes present: {', '.join(malignant_set)}."
    shown = ", ".join(diagnoses[:8]) + (", ..." if len(diagnoses) > 8 else "")
    return (
        "Malignancy indicators (malignant rate, malignancy sensitivity) are left out: none of "
        f"the {len(diagnoses)} diagnoses here ({shown}) is in the malignant set "
        f"({', '.join(sorted(codes))}); pass --malignant CODES if some are malignant."
    )


def overdispersion_line(n_units: int, unit: str = "hospitals") -> str:
    """The warning for regions too small to estimate overdispersion (empty when not needed)."""
    if n_units >= MIN_UNITS_OVERDISPERSION:
        return ""
    return (
        f"CAUTION: only {n_units} {unit}. Overdispersion (how much {unit} differ beyond chance) "
        f"cannot be estimated with fewer than {MIN_UNITS_OVERDISPERSION}, so the funnel limits "
        "assume chance alone and every funnel flag is possibly inflated (overdispersion not "
        f"estimable with N < {MIN_UNITS_OVERDISPERSION} units)."
    )


def records_lines(summary: dict, *, simulated: bool) -> list[str]:
    """The verdict of ``skinml-qc records`` from its summary dict."""
    s = summary
    lines = [
        f"{s['records_used']} records from {s['hospitals']} hospitals analysed; "
        f"{s['rows_excluded_from_all']} row(s) excluded from all analyses "
        f"({s['exclusion_entries']} problem entries in total, listed below and in "
        "excluded_rows.csv).",
    ]
    od = overdispersion_line(s["hospitals"])
    if od:
        lines.append(od)
    lines += [
        f"{s['flags']} flag(s) on {len(s['flagged_units'])} unit(s): "
        + (", ".join(s["flagged_units"][:30]) or "none")
        + ".",
        s["malignant_indicators"],
        NOT_A_LEAGUE_TABLE,
    ]
    if simulated:
        lines.insert(0, "These records are SIMULATED; no real hospital is described.")
    return lines


def rates_lines(
    n_units: int, events: float, exposure: float, flagged: list[str], *, per: float
) -> list[str]:
    """The verdict of ``skinml-qc rates`` (aggregated counts)."""
    lines = [
        f"{n_units} units, {_count(events)} events over {exposure:,.0f} person-years "
        f"(rates are shown per {per:,.0f} person-years).",
    ]
    od = overdispersion_line(n_units, "units")
    if od:
        lines.append(od)
    lines += [
        f"Outside a 95% limit in at least one funnel: {', '.join(flagged) or 'none'}.",
        NOT_A_LEAGUE_TABLE,
    ]
    return lines


def _count(n: float) -> str:
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,.1f}"
