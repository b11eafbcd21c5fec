"""Run every QC analysis that the records support and write CSVs, flags and the report.

This is the thin orchestration layer behind ``skinml-qc records`` and
``skinml-qc rates``: it decides which analyses apply (a reference column, AI
predictions, covariates, dates, images), calls the pure functions, and writes
one CSV per analysis so that the numbers can be reused outside the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.qc import analyses, shift, summary_text
from skinml.qc.flags import combine_flags, funnel_flags
from skinml.qc.funnel import (
    MIN_UNITS_OVERDISPERSION,
    FunnelResult,
    OverdispersionMethod,
    as_counts,
)
from skinml.qc.records import Records, diagnosis_codes, malignant_mask
from skinml.vocabulary import canonical, malignant_codes


@dataclass
class QcOptions:
    """What to run and how (every field has a sensible default)."""

    malignant: frozenset[str] = field(default_factory=malignant_codes)
    overdispersion: OverdispersionMethod = "additive"
    n_bootstrap: int = 1000
    seed: int = 0
    image_root: Path | None = None
    predictions: Path | None = None
    per_diagnosis: bool = True
    cusum_odds_ratio: float = 2.0
    cusum_false_alarm: float = 0.05
    progress: bool = True
    report: bool = True
    simulated: bool = False
    title: str = "skinml-qc: which hospitals diagnose differently"


@dataclass
class QcResult:
    """Everything computed, keyed by the CSV it was written to."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    funnels: list[tuple[str, FunnelResult]] = field(default_factory=list)
    flags: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None


def analyse_records(records: Records, opts: QcOptions | None = None) -> QcResult:
    """Compute all applicable analyses on validated records (no files written)."""
    opts = opts or QcOptions()
    # --malignant may name synonyms ("melanoma"); the records hold canonical codes.
    opts = replace(opts, malignant=frozenset(canonical(m) for m in opts.malignant))
    res = QcResult(excluded=records.excluded.copy())
    frame = records.frame.copy()
    extra_excluded = []

    if opts.predictions is not None and frame["image"].notna().any():
        pred = shift.read_predictions(opts.predictions)
        frame, miss = shift.attach_predictions(frame, pred)
        frame["ai"], _ = diagnosis_codes(frame["ai"], records.vocabulary)
        extra_excluded.append(miss)
        res.notes.append(f"AI predictions joined from {opts.predictions}.")

    frame = _as_categories(frame)
    frame["_malignant"] = malignant_mask(frame["diagnosis"], opts.malignant).astype(bool)
    res.summary["malignant_set"] = analyses.malignant_set(frame, opts.malignant)
    volumes = frame.groupby("hospital", sort=True).size()
    hosp = pd.DataFrame({"hospital": volumes.index, "cases": volumes.to_numpy()})
    for h in records.hospitals_without_records:
        hosp = pd.concat([hosp, pd.DataFrame({"hospital": [h], "cases": [0]})], ignore_index=True)
    res.tables["hospitals"] = hosp.sort_values("hospital").reset_index(drop=True)

    mal_counts = analyses.diagnosis_mix(frame, volumes, res, opts)
    covs = analyses.casemix_adjusted_mix(frame, records, mal_counts, res, opts)
    analyses.agreement_with_references(frame, res, opts)
    analyses.device_rates(frame, res, opts)
    analyses.shared_case_agreement(frame, res, opts)
    analyses.model_behaviour(frame, res, opts)
    shift_parts, unreadable = analyses.image_shift(frame, res, opts)
    extra_excluded.extend(unreadable)
    cusum_parts = analyses.change_over_time(frame, res, opts)

    res.excluded = pd.concat(
        [res.excluded, *[e for e in extra_excluded if not e.empty]], ignore_index=True
    )
    res.excluded = res.excluded.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    res.tables["funnels"] = (
        pd.concat([f.display_table().assign(analysis=a) for a, f in res.funnels], ignore_index=True)
        if res.funnels
        else pd.DataFrame()
    )
    res.flags = combine_flags(
        [
            funnel_flags(f, analysis=a, unit_type=str(f.table["unit_type"].iloc[0]))
            for a, f in res.funnels
        ]
        + shift_parts
        + cusum_parts
    )
    res.summary.update(
        {
            "records_read": int(
                len(records.frame)
                + records.excluded.query("excluded_from == 'all analyses'")["row"].nunique()
            ),
            "records_used": len(frame),
            "rows_excluded_from_all": int(
                res.excluded.query("excluded_from == 'all analyses'")["row"].nunique()
            ),
            "exclusion_entries": len(res.excluded),
            "hospitals": int(frame["hospital"].nunique()),
            "hospitals_without_records": records.hospitals_without_records,
            "flags": len(res.flags),
            "flagged_units": sorted(res.flags["unit"].astype(str).unique().tolist()),
            "covariates": covs,
            "malignant_codes": sorted(opts.malignant),
            "malignant_indicators": summary_text.malignant_line(
                res.summary["malignant_set"], opts.malignant, _labels(frame)
            ),
            "overdispersion_method": opts.overdispersion,
            "overdispersion_estimable": bool(
                frame["hospital"].nunique() >= MIN_UNITS_OVERDISPERSION
            ),
            "seed": opts.seed,
            "simulated": opts.simulated,
        }
    )
    res.summary["summary_lines"] = summary_text.records_lines(res.summary, simulated=opts.simulated)
    return res


def _labels(frame: pd.DataFrame) -> list[str]:
    """Every diagnosis code used by the hospitals, the reference or the AI, sorted."""
    return sorted(
        set().union(
            *(frame[c].dropna().astype(str).unique() for c in ("diagnosis", "reference", "ai"))
        )
    )


def write_outputs(res: QcResult, out_dir: str | PathLike[str]) -> dict[str, Path]:
    """One CSV per analysis plus ``flags.csv``, ``excluded_rows.csv`` and ``summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, table in res.tables.items():
        path = out / f"{name}.csv"
        table.to_csv(path, index=False)
        written[name] = path
    res.flags.to_csv(out / "flags.csv", index=False)
    res.excluded.to_csv(out / "excluded_rows.csv", index=False)
    (out / "summary.json").write_text(
        json.dumps(res.summary, indent=2, default=_json_default), encoding="utf-8"
    )
    written.update(
        {
            "flags": out / "flags.csv",
            "excluded_rows": out / "excluded_rows.csv",
            "summary": out / "summary.json",
        }
    )
    res.out_dir = out
    return written


def run_records_qc(
    records: Records, out_dir: str | PathLike[str], opts: QcOptions | None = None
) -> QcResult:
    """Analyse, write the CSVs and (unless disabled) ``report.html``, the per-diagnosis funnel
    PNGs in ``funnel_plots/`` and one page per hospital in ``units/``."""
    from skinml.qc.report import records_report

    opts = opts or QcOptions()
    res = analyse_records(records, opts)
    write_outputs(res, out_dir)
    if opts.report:
        records_report(res, opts, records, Path(out_dir)).write(Path(out_dir) / "report.html")
    return res


def run_rates_qc(
    counts: pd.DataFrame,
    excluded: pd.DataFrame,
    out_dir: str | PathLike[str],
    *,
    strata: Sequence[str] = (),
    per: float = 100_000.0,
    overdispersion: OverdispersionMethod = "additive",
    indicator: str = "rate",
    source: str = "counts",
    report: bool = True,
    notes: Sequence[str] = (),
) -> tuple[list[FunnelResult], pd.DataFrame]:
    """Poisson funnels for aggregated counts; writes ``rates.csv``, ``funnels.csv``, ``flags.csv``,
    ``excluded_rows.csv``, ``summary.json`` and (unless disabled) ``report.html`` with one page
    per unit in ``units/``. Rates are written per ``per`` person-years, counts as integers."""
    from skinml.qc.rates import rate_funnels
    from skinml.qc.report import rates_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    funnels, table = rate_funnels(
        counts, strata=strata, per=per, overdispersion=overdispersion, indicator=indicator
    )
    table = table.assign(events=as_counts(table["events"]))
    table.to_csv(out / "rates.csv", index=False)
    pd.concat([f.display_table() for f in funnels], ignore_index=True).to_csv(
        out / "funnels.csv", index=False
    )
    flags = combine_flags([funnel_flags(f, analysis="rate funnel") for f in funnels])
    flags.to_csv(out / "flags.csv", index=False)
    excluded.to_csv(out / "excluded_rows.csv", index=False)
    flagged = sorted(
        {
            str(u)
            for f in funnels
            for u in f.table.loc[f.table["status"].isin(["alert", "alarm"]), "unit"]
        }
    )
    events = table["events"].sum()
    events = int(events) if float(events).is_integer() else float(events)
    lines = summary_text.rates_lines(
        len(table), events, float(table["exposure"].sum()), flagged, per=per
    )
    summary = {
        "units": len(table),
        "events": events,
        "exposure": float(table["exposure"].sum()),
        "strata": list(strata),
        "per": per,
        "overdispersion_estimable": len(table) >= MIN_UNITS_OVERDISPERSION,
        "funnels": [
            {
                "indicator": f.indicator,
                "target": f.target * f.scale,
                "per": f.scale,
                "overdispersion": f.overdispersion.describe(f.scale),
                "alert": sorted(f.table.loc[f.table["status"] == "alert", "unit"].astype(str)),
                "alarm": sorted(f.table.loc[f.table["status"] == "alarm", "unit"].astype(str)),
            }
            for f in funnels
        ],
        "rows_excluded": len(excluded),
        "summary_lines": lines,
    }
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, default=_json_default), encoding="utf-8"
    )
    if report:
        rates_report(
            funnels,
            table,
            excluded,
            title=f"skinml-qc: {indicator} per unit",
            source=source,
            notes=list(notes),
            lines=lines,
            out_dir=out,
        ).write(out / "report.html")
    return funnels, flags


def _as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Hospital/device as categories, and diagnosis/reference/AI on one shared category set.

    Grouping a million strings thirty times is the slowest part of QC; categories make it
    cheap, and a shared set keeps ``diagnosis != ai`` comparisons valid.
    """
    out = frame.copy()
    for c in ("hospital", "device"):
        out[c] = out[c].astype("category")
    labels = sorted(
        set().union(
            *(out[c].dropna().astype(str).unique() for c in ("diagnosis", "reference", "ai"))
        )
    )
    for c in ("diagnosis", "reference", "ai"):
        out[c] = pd.Categorical(
            out[c].astype(object).where(out[c].notna(), None), categories=labels
        )
    return out


def _json_default(obj: object) -> object:
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.bool_):
        return bool(obj)
    return str(obj)
