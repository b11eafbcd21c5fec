"""The QC analyses, one function each, applied by :func:`skinml.qc.pipeline.analyse_records`.

Each function reads the prepared records frame, adds its tables and funnels to the
shared :class:`~skinml.qc.pipeline.QcResult` and returns what later analyses or the
flag list need. Which analyses run is decided by the data (a reference column, AI
predictions, covariates, dates, images). Malignancy indicators run only when some
diagnosis in the records is in the malignant set (:func:`malignant_set`): a region of
psoriasis, eczema and urticaria has no malignancy rate to compare, and a funnel of
zeros would only produce empty plots and undefined numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from skinml.qc import agreement, cusum, mix, shift
from skinml.qc.flags import cusum_flags, shift_flags
from skinml.qc.funnel import FunnelResult, funnel_table
from skinml.qc.records import SCOPE_TIME, Records

if TYPE_CHECKING:
    from skinml.qc.pipeline import QcOptions, QcResult


def malignant_set(frame: pd.DataFrame, malignant: Iterable[str]) -> list[str]:
    """The diagnosis codes in the records (any of diagnosis, reference, AI) that are malignant."""
    mal = {m.lower() for m in malignant}
    present: set[str] = set()
    for col in ("diagnosis", "reference", "ai"):
        if col in frame:
            present |= set(frame[col].dropna().astype(str).unique())
    return sorted(d for d in present if d.lower() in mal)


def has_malignant(res: QcResult) -> bool:
    """Whether the malignancy indicators apply (set by :func:`analyse_records`)."""
    return bool(res.summary.get("malignant_set"))


def binomial_funnel(
    res: QcResult,
    analysis: str,
    units: pd.Index | np.ndarray,
    events: Sequence,
    volume: Sequence,
    indicator: str,
    opts: QcOptions,
    unit_type: str = "hospital",
    diagnosis: str | None = None,
) -> FunnelResult | None:
    """Add a binomial funnel (events out of volume per unit) to the result.

    An indicator with no cases at all (e.g. "called mel when the reference says
    not mel" where every reference is mel) has no pooled rate to compare with: it
    is skipped with a note rather than stopping the whole QC run.
    """
    if float(np.nansum(np.asarray(volume, dtype=float))) <= 0:
        res.notes.append(f"{indicator}: no cases in any {unit_type}, so no funnel was drawn.")
        return None
    f = funnel_table(
        units,
        events,
        volume,
        indicator=indicator,
        kind="binomial",
        overdispersion=opts.overdispersion,
    )
    f.table.insert(0, "unit_type", unit_type)
    if diagnosis is not None:
        f = replace(f, diagnosis=str(diagnosis))
    res.funnels.append((analysis, f))
    return f


def diagnosis_mix(
    frame: pd.DataFrame, volumes: pd.Series, res: QcResult, opts: QcOptions
) -> pd.Series:
    """Crude diagnosis mix per hospital; returns malignant diagnoses per hospital."""
    counts = mix.contingency(frame)
    cells, tests, overall = mix.diagnosis_mix(counts)
    res.tables["mix_crude"] = cells
    res.tables["mix_tests"] = tests
    res.summary["mix_overall_crude"] = overall
    mal_counts = frame.groupby("hospital", sort=True, observed=False)["_malignant"].sum()
    if has_malignant(res):
        binomial_funnel(
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
            if counts[dx].sum() == 0:
                continue  # a code only the reference or the AI used: no share to compare
            binomial_funnel(
                res,
                "diagnosis mix",
                counts.index,
                counts[dx],
                counts.sum(axis=1),
                f"share diagnosed {dx} (crude)",
                opts,
                diagnosis=dx,
            )
    return mal_counts


def casemix_adjusted_mix(
    frame: pd.DataFrame, records: Records, mal_counts: pd.Series, res: QcResult, opts: QcOptions
) -> list[str]:
    """Diagnosis mix by indirect standardisation on the covariates present; returns them.

    Adds ``_p_malignant`` (expected probability of a malignant diagnosis) to ``frame``,
    which the change-over-time analysis uses for risk adjustment.
    """
    tests, overall = res.tables["mix_tests"], res.summary["mix_overall_crude"]
    covs = [c for c in records.covariates if frame[c].notna().any()]
    if covs:
        expected = mix.casemix_expected(frame, covs)
        adj_cells, adj_tests = mix.adjusted_mix(frame, expected)
        res.tables["mix_adjusted"] = adj_cells
        res.tables["mix_tests"] = tests.merge(
            adj_tests.drop(columns=["n"]), on="hospital", how="left"
        )
        mal_cols = [c for c in expected.columns if c.lower() in {m.lower() for m in opts.malignant}]
        if has_malignant(res) and mal_cols:
            frame["_p_malignant"] = expected[mal_cols].sum(axis=1)
            exp_mal = frame.groupby("hospital", sort=True, observed=True)["_p_malignant"].sum()
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
                res.funnels.append(("diagnosis mix (case-mix adjusted)", replace(f, diagnosis=dx)))
        crude_v, adj_chi = overall["cramers_v"], float(adj_tests["pearson_chi2_adjusted"].sum())
        res.summary["mix_adjusted"] = {
            "covariates": covs,
            "pearson_chi2_adjusted_total": adj_chi,
            "pearson_chi2_crude_total": overall["chi2"],
            "cramers_v_crude": crude_v,
        }
    return covs


def agreement_with_references(frame: pd.DataFrame, res: QcResult, opts: QcOptions) -> None:
    """Agreement of each hospital with the expert reference and with the AI, where present."""
    for ref, label in (("reference", "expert reference"), ("ai", "AI")):
        if not frame[ref].notna().any():
            continue
        summ, per_dx = agreement.hospital_agreement(
            frame, ref, malignant=opts.malignant, n_bootstrap=opts.n_bootstrap, seed=opts.seed
        )
        if not has_malignant(res):  # no malignant code: sensitivity/specificity are undefined
            summ = summ.drop(columns=agreement.MALIGNANT_COLUMNS)
        res.tables[f"agreement_{ref}"] = summ
        res.tables[f"agreement_{ref}_per_diagnosis"] = per_dx
        analysis = f"agreement with {label}"
        if ref == "ai":
            binomial_funnel(
                res,
                analysis,
                summ["hospital"],
                (summ["n"] * (1 - summ["agreement"])).round(),
                summ["n"],
                "AI–clinician discordance",
                opts,
            )
        else:
            binomial_funnel(
                res,
                analysis,
                summ["hospital"],
                (summ["agreement"] * summ["n"]).round(),
                summ["n"],
                f"agreement with {label}",
                opts,
            )
        if has_malignant(res):
            binomial_funnel(
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
                binomial_funnel(
                    res,
                    analysis,
                    sub["hospital"],
                    sub["called_k_when_ref_k"],
                    sub["ref_k"],
                    f"called {dx} when {label} says {dx} (sensitivity)",
                    opts,
                    diagnosis=dx,
                )
                binomial_funnel(
                    res,
                    analysis,
                    sub["hospital"],
                    sub["called_k_when_ref_not_k"],
                    sub["ref_not_k"],
                    f"called {dx} when {label} says otherwise (over-call)",
                    opts,
                    diagnosis=dx,
                )
        if frame["device"].notna().any() and ref == "ai":
            rows = frame["device"].notna() & frame["ai"].notna()
            discordant = frame.loc[rows, "diagnosis"] != frame.loc[rows, "ai"]
            _device_funnel(frame.loc[rows], discordant, "AI–clinician discordance", res, opts)


def device_rates(frame: pd.DataFrame, res: QcResult, opts: QcOptions) -> None:
    """Malignant diagnosis rate per acquisition device."""
    if frame["device"].notna().any() and has_malignant(res):
        rows = frame["device"].notna()
        _device_funnel(
            frame.loc[rows], frame.loc[rows, "_malignant"], "malignant diagnosis rate", res, opts
        )


def _device_funnel(
    frame: pd.DataFrame, events: pd.Series, indicator: str, res: QcResult, opts: QcOptions
) -> None:
    """A binomial funnel of a per-record 0/1 outcome by acquisition device."""
    g = events.groupby(frame["device"], sort=True)
    binomial_funnel(
        res,
        "device",
        g.sum().index,
        g.sum(),
        g.size(),
        f"{indicator} by device",
        opts,
        unit_type="device",
    )


def shared_case_agreement(frame: pd.DataFrame, res: QcResult, opts: QcOptions) -> None:
    """Krippendorff's alpha on cases seen by more than one hospital."""
    key = "case" if frame["case"].notna().any() else "image"
    if frame[key].notna().any() and frame.groupby(key)["hospital"].nunique().max() >= 2:
        overall_alpha, per_h = agreement.shared_case_alpha(frame, case=key, seed=opts.seed)
        if overall_alpha:
            res.summary["shared_case_alpha"] = overall_alpha
            res.tables["shared_case_agreement"] = per_h


def model_behaviour(frame: pd.DataFrame, res: QcResult, opts: QcOptions) -> None:
    """Model confidence and out-of-distribution rate per hospital and device."""
    if "confidence" in frame and frame["confidence"].notna().any():
        for grp in ("hospital", "device"):
            if frame[grp].notna().any():
                mb = shift.model_behaviour(frame, grp)
                res.tables[f"model_behaviour_{grp}"] = mb
                if "ood_count" in mb:
                    binomial_funnel(
                        res,
                        "model behaviour",
                        mb[grp],
                        mb["ood_count"],
                        mb["n"],
                        f"out-of-distribution rate by {grp}",
                        opts,
                        unit_type=grp,
                    )


def image_shift(
    frame: pd.DataFrame, res: QcResult, opts: QcOptions
) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Image-statistic shift per hospital and device; returns (flag tables, unreadable rows)."""
    unreadable_parts: list[pd.DataFrame] = []
    shift_parts = []
    if opts.image_root is not None and frame["image"].notna().any():
        img_stats, unreadable = shift.collect_image_stats(
            frame, opts.image_root, progress=opts.progress
        )
        unreadable_parts.append(unreadable)
        res.tables["image_stats"] = img_stats
        for grp in ("hospital", "device"):
            if not img_stats.empty and img_stats[grp].notna().any():
                diffs = shift.standardized_differences(img_stats, grp)
                res.tables[f"image_shift_{grp}"] = diffs
                shift_parts.append(shift_flags(diffs, unit_type=grp))
    return shift_parts, unreadable_parts


def change_over_time(frame: pd.DataFrame, res: QcResult, opts: QcOptions) -> list[pd.DataFrame]:
    """Monthly risk-adjusted CUSUMs per hospital; returns the flag tables."""
    cusum_parts = []
    if frame["date"].notna().any():
        summaries, paths = [], []
        if has_malignant(res):
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
        if not summaries:
            res.notes.append(
                "Dates are present, but the CUSUM monitors the malignant diagnosis rate and "
                "AI–clinician discordance, and neither applies here: no change-over-time analysis."
            )
            return cusum_parts
        res.tables["cusum_summary"] = pd.concat(summaries, ignore_index=True)
        res.tables["cusum_monthly"] = pd.concat(paths, ignore_index=True)
        cusum_parts.append(cusum_flags(res.tables["cusum_summary"]))
    elif res.excluded["excluded_from"].eq(SCOPE_TIME).any():
        res.notes.append("No date could be parsed, so there is no change-over-time analysis.")
    return cusum_parts
