"""Aggregated count data: events and person-years per hospital (the rate funnel).

Referral or incidence rates arrive already counted (events, exposure) per
hospital and often per stratum (sex, age band). Crude rates are compared on a
Poisson funnel of rate against person-years; when strata are given the
comparison is also made after indirect standardisation (expected events = Σ
stratum person-years × pooled stratum rate; funnel of O/E against E), so that a
service with an older population is not flagged for being older.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError
from skinml.qc.funnel import FunnelResult, OverdispersionMethod, funnel_table
from skinml.textfiles import read_csv


def load_counts(
    path: str | PathLike[str],
    *,
    hospital: str = "hospital",
    events: str = "events",
    exposure: str = "person_years",
    strata: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a counts CSV.

    Returns:
        counts: ``hospital, events, exposure`` plus the strata columns, one row per input row
            that passed.
        excluded: ``row, column, value, reason, excluded_from`` for rows that did not
            (empty hospital, non-numeric or negative counts, events with zero exposure).

    Raises:
        DataError: a required column is missing or no row is usable.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("counts file not found", file=p, fix="check the path")
    raw = read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
    need = [hospital, events, exposure, *strata]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(
            f"column(s) {missing} missing; found {list(raw.columns)}",
            file=p,
            column=missing[0],
            expected="one row per hospital (or hospital × stratum) with event and exposure columns",
            fix="pass --hospital-column / --events-column / --exposure-column / --strata",
        )
    return validate_counts(
        raw, hospital=hospital, events=events, exposure=exposure, strata=strata, source=str(p)
    )


def validate_counts(
    raw: pd.DataFrame,
    *,
    hospital: str = "hospital",
    events: str = "events",
    exposure: str = "person_years",
    strata: Sequence[str] = (),
    source: str = "counts",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Row-level checks of count data (see :func:`load_counts`)."""
    row = np.arange(1, len(raw) + 1)
    h = raw[hospital].astype("string").str.strip()
    ev = pd.to_numeric(raw[events], errors="coerce")
    ex = pd.to_numeric(raw[exposure], errors="coerce")
    checks = [
        (h.isna() | (h == ""), hospital, "hospital is empty", raw[hospital]),
        (ev.isna(), events, "events is not a number", raw[events]),
        (ev < 0, events, "events is negative", raw[events]),
        (ex.isna(), exposure, "exposure is not a number", raw[exposure]),
        (ex < 0, exposure, "exposure is negative", raw[exposure]),
        ((ex == 0) & (ev > 0), exposure, "events with zero exposure", raw[exposure]),
    ]
    problems = []
    for mask, col, reason, val in checks:
        mask = mask.fillna(False).to_numpy(bool)
        if mask.any():
            problems.append(
                pd.DataFrame(
                    {
                        "row": row[mask],
                        "column": col,
                        "value": val[mask].astype(str).to_numpy(),
                        "reason": reason,
                        "excluded_from": "all analyses",
                    }
                )
            )
    excluded = (
        pd.concat(problems, ignore_index=True).sort_values("row", kind="stable")
        if problems
        else pd.DataFrame(columns=["row", "column", "value", "reason", "excluded_from"])
    )
    keep = ~np.isin(row, excluded["row"].to_numpy())
    counts = pd.DataFrame({"row": row, "hospital": h, "events": ev, "exposure": ex})
    for s in strata:
        counts[s] = raw[s].astype(str)
    counts = counts[keep].reset_index(drop=True)
    if counts.empty:
        raise DataError("no usable rows", file=source, fix="see the problems listed for each row")
    return counts, excluded.reset_index(drop=True)


def rate_funnels(
    counts: pd.DataFrame,
    *,
    strata: Sequence[str] = (),
    per: float = 100_000.0,
    overdispersion: OverdispersionMethod = "additive",
    indicator: str = "rate",
) -> tuple[list[FunnelResult], pd.DataFrame]:
    """Crude (and, with strata, indirectly standardised) Poisson funnels.

    Returns:
        funnels: the crude funnel (rate per unit exposure; display scaled by ``per``) and,
            with strata, the standardised funnel (O/E against expected events).
        table: per hospital ``events, exposure, crude_rate_per, expected_events, o_e``.
    """
    agg = counts.groupby("hospital", sort=True)[["events", "exposure"]].sum()
    crude = funnel_table(
        agg.index,
        agg["events"],
        agg["exposure"],
        indicator=f"{indicator} (crude, per {per:,.0f} person-years)",
        kind="poisson",
        overdispersion=overdispersion,
        volume_label="person-years",
        scale=per,
    )
    table = agg.reset_index()
    table[f"crude_rate_per_{per:g}"] = table["events"] / table["exposure"] * per
    funnels = [crude]
    if strata:
        cells = (
            counts.groupby(["hospital", *strata], sort=True)[["events", "exposure"]]
            .sum()
            .reset_index()
        )
        ref = cells.groupby(list(strata))[["events", "exposure"]].sum()
        ref_rate = (
            (ref["events"] / ref["exposure"].where(ref["exposure"] > 0))
            .fillna(0.0)
            .rename("ref_rate")
        )
        cells = cells.join(ref_rate, on=list(strata))
        cells["expected"] = cells["exposure"] * cells["ref_rate"]
        exp = cells.groupby("hospital", sort=True)["expected"].sum()
        table["expected_events"] = table["hospital"].map(exp)
        table["o_e"] = table["events"] / table["expected_events"]
        funnels.append(
            funnel_table(
                exp.index,
                agg.loc[exp.index, "events"],
                exp.to_numpy(),
                indicator=f"{indicator} standardised for {', '.join(strata)} (observed/expected)",
                kind="poisson",
                target=1.0,
                overdispersion=overdispersion,
                volume_label="expected events",
            )
        )
    return funnels, table
