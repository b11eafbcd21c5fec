"""One page per hospital (or health service): its counts, indicators and flags together.

The main report answers "which hospitals differ"; a quality lead who then phones a
hospital needs everything about *that* hospital on one page: how many cases, every
indicator with its interval and status against the funnel, every flag with its reason
and caveat. Pages are written next to ``report.html`` (``units/<name>.html``) with the
same :class:`~skinml.reporting.html.HtmlReport` builder, and linked from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from skinml.qc.funnel import FunnelResult
from skinml.reporting.html import HtmlReport

PAGES_DIR = "units"
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class UnitTable:
    """A table with one or more rows per unit, shown filtered on each unit's page."""

    title: str
    frame: pd.DataFrame
    column: str = "hospital"


def file_names(units: Sequence[object], suffix: str = ".html") -> dict[str, str]:
    """A distinct, file-system-safe file name per unit (``Metro Sur`` -> ``Metro_Sur.html``)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for unit in sorted({str(u) for u in units}):
        base = _UNSAFE.sub("_", unit).strip("._") or "unit"
        name, k = base, 2
        while name.lower() in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name.lower())
        names[unit] = f"{name}{suffix}"
    return names


def unit_indicators(funnels: Sequence[tuple[str, FunnelResult]], unit: str) -> pd.DataFrame:
    """Every funnel row of one unit, in display units (rates per ``per``), funnel order."""
    rows = []
    for analysis, f in funnels:
        t = f.display_table()
        t = t[t["unit"].astype(str) == unit]
        if t.empty:
            continue
        rows.append(
            t.assign(analysis=analysis)[
                [
                    "analysis",
                    "indicator",
                    "diagnosis",
                    "volume",
                    "events",
                    "value",
                    "ci_low",
                    "ci_high",
                    "target",
                    "per",
                    "status",
                    "direction",
                ]
            ]
        )
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    # cases stay whole numbers next to person-years and expected counts in one column
    out["volume"] = [
        int(v) if float(v).is_integer() else float(v) for v in out["volume"].astype(float)
    ]
    return out


def write_unit_pages(
    out_dir: str | Path,
    *,
    units: Sequence[object],
    unit_type: str,
    funnels: Sequence[tuple[str, FunnelResult]],
    flags: pd.DataFrame,
    tables: Sequence[UnitTable] = (),
    header_lines: Sequence[str] = (),
    counts: Mapping[str, str] | None = None,
    title: str = "skinml-qc",
    unit_label: str = "hospital",
) -> dict[str, str]:
    """Write ``<out_dir>/units/<unit>.html`` for every unit; return unit -> relative link.

    Args:
        units: the units to write pages for (hospitals, or services for count data).
        unit_type: the flags' ``unit_type`` these units have (``hospital``).
        funnels: ``(analysis, funnel)`` pairs; each unit's row of each is shown.
        flags: the combined flags table; the unit's rows are shown with reasons and caveats.
        tables: further per-unit tables (diagnosis mix, agreement, CUSUM, image shift).
        header_lines: region-wide lines every page repeats (e.g. the overdispersion caveat).
        counts: one line of counts per unit (e.g. "412 cases").
        unit_label: what a unit is, in words ("hospital", "health service").
    """
    folder = Path(out_dir) / PAGES_DIR
    names = file_names(units)
    for unit, file_name in names.items():
        rep = HtmlReport(f"{title}: {unit}", f"Everything about one {unit_label}")
        rep.links([("../report.html", "back to the main report")])
        own = flags[(flags["unit"].astype(str) == unit) & (flags["unit_type"] == unit_type)]
        alarms = int((own["level"] == "alarm").sum())
        lines = [(counts or {}).get(unit, "")] if counts and counts.get(unit) else []
        lines.append(
            f"{len(own)} flag(s), {alarms} of them alarm(s)."
            if len(own)
            else "No flag: every indicator lies within its 95% funnel limits."
        )
        lines += [h for h in header_lines if h]
        rep.verdict(lines, tone="warn" if len(own) else "good")
        rep.heading("Flags")
        if len(own):
            rep.table(own[["level", "analysis", "indicator", "reason", "caveat"]])
        else:
            rep.paragraph("None.")
        rep.heading("Indicators")
        ind = unit_indicators(funnels, unit)
        if ind.empty:
            rep.paragraph("No funnel indicator covers this unit.")
        else:
            rep.paragraph(
                "value and its 95% interval against the target, in the units of 'per' (1 = a "
                "proportion or ratio); status against the funnel limits at this volume.",
                css_class="small",
            )
            rep.table(ind)
        for t in tables:
            sub = t.frame[t.frame[t.column].astype(str) == unit] if t.column in t.frame else None
            if sub is not None and not sub.empty:
                rep.heading(t.title)
                rep.table(sub.drop(columns=[t.column]))
        rep.write(folder / file_name)
    return {unit: f"{PAGES_DIR}/{name}" for unit, name in names.items()}
