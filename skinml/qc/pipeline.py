"""Run every QC analysis that the records support and write CSVs, flags and the report.

This is the thin orchestration layer behind ``skinml-qc records`` and
``skinml-qc rates``: it decides which analyses apply (a reference column, AI
predictions, covariates, dates, images), calls the pure functions, and writes
one CSV per analysis so that the numbers can be reused outside the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.qc import agreement, cusum, mix, shift
from skinml.qc.flags import combine_flags, cusum_flags, funnel_flags, shift_flags
from skinml.qc.funnel import FunnelResult, OverdispersionMethod, funnel_table
from skinml.qc.records import DEFAULT_MALIGNANT, SCOPE_TIME, Records, malignant_mask


@dataclass
class QcOptions:
    """What to run and how (every field has a sensible default)."""

    malignant: frozenset[str] = DEFAULT_MALIGNANT
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


def _binomial(
    res: QcResult,
    analysis: str,
    units: pd.Index | np.ndarray,
    events: Sequence,
    volume: Sequence,
    indicator: str,
    opts: QcOptions,
    unit_type: str = "hospital",
) -> FunnelResult:
    f = funnel_table(
        units,
        events,
        volume,
        indicator=indicator,
        kind="binomial",
        overdispersion=opts.overdispersion,
    )
    f.table.insert(0, "unit_type", unit_type)
    res.funnels.append((analysis, f))
    return f


def analyse_records(records: Records, opts: QcOptions | None = None) -> QcResult:
    """Compute all applicable analyses on validated records (no files written)."""
    opts = opts or QcOptions()
    res = QcResult(excluded=records.excluded.copy())
    frame = records.frame.copy()
    extra_excluded = []

    if opts.predictions is not None and frame["image"].notna().any():
        pred = shift.read_predictions(opts.predictions)
        frame, miss = shift.attach_predictions(frame, pred)
        extra_excluded.append(miss)
        res.notes.append(f"AI predictions joined from {opts.predictions}.")

    frame = _as_categories(frame)
    mal = malignant_mask(frame["diagnosis"], opts.malignant).astype(bool)
    frame["_malignant"] = mal
    volumes = frame.groupby("hospital", sort=True).size()
    hosp = pd.DataFrame({"hospital": volumes.index, "cases": volumes.to_numpy()})
    for h in records.hospitals_without_records:
        hosp = pd.concat([hosp, pd.DataFrame({"hospital": [h], "cases": [0]})], ignore_index=True)
    res.tables["hospitals"] = hosp.sort_values("hospital").reset_index(drop=True)

    # Diagnosis mix, crude.
    counts = mix.contingency(frame)
    cells, tests, overall = mix.diagnosis_mix(counts)
    res.tables["mix_crude"] = cells
    res.tables["mix_tests"] = tests
    res.summary["mix_overall_crude"] = overall
    mal_counts = frame.groupby("hospital", sort=True)["_malignant"].sum()
    _binomial(
        res,
        "diagnosis mix",
        volumes.index,
        mal_counts,
        volumes,
        "malignant diagnosis rate (crude)",
        opts,
    )
    if opts.per_diagnosis:
        for dx in counts.columns:
            _binomial(
                res,
                "diagnosis mix",
                counts.index,
                counts[dx],
                counts.sum(axis=1),
                f"share diagnosed {dx} (crude)",
                opts,
            )

    # Case-mix adjustment (indirect standardisation).
    covs = [c for c in records.covariates if frame[c].notna().any()]
    if covs:
        expected = mix.casemix_expected(frame, covs)
        adj_cells, adj_tests = mix.adjusted_mix(frame, expected)
        res.tables["mix_adjusted"] = adj_cells
        res.tables["mix_tests"] = tests.merge(
            adj_tests.drop(columns=["n"]), on="hospital", how="left"
        )
        mal_cols = [c for c in expected.columns if c.lower() in {m.lower() for m in opts.malignant}]
        frame["_p_malignant"] = expected[mal_cols].sum(axis=1) if mal_cols else 0.0
        exp_mal = frame.groupby("hospital", sort=True)["_p_malignant"].sum()
        f = funnel_table(
            exp_mal.index,
            mal_counts.loc[exp_mal.index],
            exp_mal.to_numpy(),
            indicator=f"malignant diagnoses, observed/expected given {', '.join(covs)}",
            kind="poisson",
            target=1.0,
            overdispersion=opts.overdispersion,
            volume_label="expected malignant diagnoses",
        )
        f.table.insert(0, "unit_type", "hospital")
        res.funnels.append(("diagnosis mix (case-mix adjusted)", f))
        if opts.per_diagnosis:
            for dx, sub in adj_cells.groupby("diagnosis", sort=True):
                f = funnel_table(
                    sub["hospital"],
                    sub["observed"],
                    sub["expected"],
                    indicator=f"diagnosed {dx}, observed/expected given case mix",
                    kind="poisson",
                    target=1.0,
                    overdispersion=opts.overdispersion,
                    volume_label="expected cases",
                )
                f.table.insert(0, "unit_type", "hospital")
                res.funnels.append(("diagnosis mix (case-mix adjusted)", f))
        crude_v, adj_chi = overall["cramers_v"], float(adj_tests["pearson_chi2_adjusted"].sum())
        res.summary["mix_adjusted"] = {
            "covariates": covs,
            "pearson_chi2_adjusted_total": adj_chi,
            "pearson_chi2_crude_total": overall["chi2"],
            "cramers_v_crude": crude_v,
        }

    # Agreement with the expert reference and with the AI.
    for ref, label in (("reference", "expert reference"), ("ai", "AI")):
        if not frame[ref].notna().any():
            continue
        summ, per_dx = agreement.hospital_agreement(
            frame, ref, malignant=opts.malignant, n_bootstrap=opts.n_bootstrap, seed=opts.seed
        )
        res.tables[f"agreement_{ref}"] = summ
        res.tables[f"agreement_{ref}_per_diagnosis"] = per_dx
        analysis = f"agreement with {label}"
        if ref == "ai":
            _binomial(
                res,
                analysis,
                summ["hospital"],
                (summ["n"] * (1 - summ["agreement"])).round(),
                summ["n"],
                "AI–clinician discordance",
                opts,
            )
        else:
            _binomial(
                res,
                analysis,
                summ["hospital"],
                (summ["agreement"] * summ["n"]).round(),
                summ["n"],
                f"agreement with {label}",
                opts,
            )
        _binomial(
            res,
            analysis,
            summ["hospital"],
            (summ["malignant_sensitivity"].fillna(0) * summ["reference_malignant"]).round(),
            summ["reference_malignant"],
            f"malignancy sensitivity vs {label}",
            opts,
        )
        if opts.per_diagnosis:
            for dx, sub in per_dx.groupby("diagnosis", sort=True):
                _binomial(
                    res,
                    analysis,
                    sub["hospital"],
                    sub["called_k_when_ref_k"],
                    sub["ref_k"],
                    f"called {dx} when {label} says {dx} (sensitivity)",
                    opts,
                )
                _binomial(
                    res,
                    analysis,
                    sub["hospital"],
                    sub["called_k_when_ref_not_k"],
                    sub["ref_not_k"],
                    f"called {dx} when {label} says otherwise (over-call)",
                    opts,
                )
        if frame["device"].notna().any() and ref == "ai":
            d = frame[frame["device"].notna() & frame["ai"].notna()]
            g = d.assign(dis=(d["diagnosis"] != d["ai"])).groupby("device", sort=True)["dis"]
            _binomial(
                res,
                "device",
                g.sum().index,
                g.sum(),
                g.size(),
                "AI–clinician discordance by device",
                opts,
                unit_type="device",
            )

    if frame["device"].notna().any():
        d = frame[frame["device"].notna()].groupby("device", sort=True)["_malignant"]
        _binomial(
            res,
            "device",
            d.sum().index,
            d.sum(),
            d.size(),
            "malignant diagnosis rate by device",
            opts,
            unit_type="device",
        )

    # Shared cases across hospitals.
    key = "case" if frame["case"].notna().any() else "image"
    if frame[key].notna().any() and frame.groupby(key)["hospital"].nunique().max() >= 2:
        overall_alpha, per_h = agreement.shared_case_alpha(frame, case=key, seed=opts.seed)
        if overall_alpha:
            res.summary["shared_case_alpha"] = overall_alpha
            res.tables["shared_case_agreement"] = per_h

    # Model behaviour (confidence, OOD) per hospital / device.
    if "confidence" in frame and frame["confidence"].notna().any():
        for grp in ("hospital", "device"):
            if frame[grp].notna().any():
                mb = shift.model_behaviour(frame, grp)
                res.tables[f"model_behaviour_{grp}"] = mb
                if "ood_count" in mb:
                    _binomial(
                        res,
                        "model behaviour",
                        mb[grp],
                        mb["ood_count"],
                        mb["n"],
                        f"out-of-distribution rate by {grp}",
                        opts,
                        unit_type=grp,
                    )

    # Image statistics.
    shift_parts = []
    if opts.image_root is not None and frame["image"].notna().any():
        img_stats, unreadable = shift.collect_image_stats(
            frame, opts.image_root, progress=opts.progress
        )
        extra_excluded.append(unreadable)
        res.tables["image_stats"] = img_stats
        for grp in ("hospital", "device"):
            if not img_stats.empty and img_stats[grp].notna().any():
                diffs = shift.standardized_differences(img_stats, grp)
                res.tables[f"image_shift_{grp}"] = diffs
                shift_parts.append(shift_flags(diffs, unit_type=grp))

    # Change over time.
    cusum_parts = []
    if frame["date"].notna().any():
        summaries, paths = [], []
        ors = (opts.cusum_odds_ratio, 1.0 / opts.cusum_odds_ratio)
        p_exp = frame.get("_p_malignant")
        label = "malignant diagnosis rate" + (" (risk-adjusted)" if p_exp is not None else "")
        s, p = cusum.monthly_cusum(
            frame,
            frame["_malignant"],
            p_exp,
            indicator=label,
            odds_ratios=ors,
            false_alarm=opts.cusum_false_alarm,
            seed=opts.seed,
        )
        summaries.append(s)
        paths.append(p)
        if frame["ai"].notna().any():
            dis = (frame["diagnosis"] != frame["ai"]).where(frame["ai"].notna())
            s, p = cusum.monthly_cusum(
                frame,
                dis,
                None,
                indicator="AI–clinician discordance",
                odds_ratios=(opts.cusum_odds_ratio,),
                false_alarm=opts.cusum_false_alarm,
                seed=opts.seed,
            )
            summaries.append(s)
            paths.append(p)
        res.tables["cusum_summary"] = pd.concat(summaries, ignore_index=True)
        res.tables["cusum_monthly"] = pd.concat(paths, ignore_index=True)
        cusum_parts.append(cusum_flags(res.tables["cusum_summary"]))
    elif res.excluded["excluded_from"].eq(SCOPE_TIME).any():
        res.notes.append("No date could be parsed, so there is no change-over-time analysis.")

    res.excluded = pd.concat(
        [res.excluded, *[e for e in extra_excluded if not e.empty]], ignore_index=True
    )
    res.excluded = res.excluded.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    res.tables["funnels"] = pd.concat(
        [f.table.assign(analysis=a) for a, f in res.funnels], ignore_index=True
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
            "overdispersion_method": opts.overdispersion,
            "seed": opts.seed,
            "simulated": opts.simulated,
        }
    )
    return res


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
    """Analyse, write the CSVs and (unless disabled) the HTML report ``report.html``."""
    from skinml.qc.report import records_report

    opts = opts or QcOptions()
    res = analyse_records(records, opts)
    write_outputs(res, out_dir)
    if opts.report:
        records_report(res, opts, records).write(Path(out_dir) / "report.html")
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
) -> tuple[list[FunnelResult], pd.DataFrame]:
    """Poisson funnels for aggregated counts; writes ``rates.csv``, ``funnels.csv``, ``flags.csv``,
    ``excluded_rows.csv``, ``summary.json`` and ``report.html``."""
    from skinml.qc.rates import rate_funnels
    from skinml.qc.report import rates_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    funnels, table = rate_funnels(
        counts, strata=strata, per=per, overdispersion=overdispersion, indicator=indicator
    )
    table.to_csv(out / "rates.csv", index=False)
    pd.concat([f.table for f in funnels], ignore_index=True).to_csv(
        out / "funnels.csv", index=False
    )
    flags = combine_flags([funnel_flags(f, analysis="rate funnel") for f in funnels])
    flags.to_csv(out / "flags.csv", index=False)
    excluded.to_csv(out / "excluded_rows.csv", index=False)
    summary = {
        "units": len(table),
        "events": float(table["events"].sum()),
        "exposure": float(table["exposure"].sum()),
        "strata": list(strata),
        "per": per,
        "funnels": [
            {
                "indicator": f.indicator,
                "target": f.target * f.scale,
                "overdispersion": f.overdispersion.describe(),
                "alert": sorted(f.table.loc[f.table["status"] == "alert", "unit"].astype(str)),
                "alarm": sorted(f.table.loc[f.table["status"] == "alarm", "unit"].astype(str)),
            }
            for f in funnels
        ],
        "rows_excluded": len(excluded),
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
            notes=[],
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
