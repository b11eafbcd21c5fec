"""The self-contained HTML report for a quality lead (built on :class:`HtmlReport`).

Order of sections follows the questions a reader asks: is anything flagged and
why; is the data complete; does the diagnosis mix differ, and does case mix
explain it; how do hospitals agree with experts and the AI; are the images
themselves different; did anything change over time; how was it computed.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from skinml.qc import plots
from skinml.qc.funnel import FunnelResult
from skinml.qc.records import Records, describe_exclusions
from skinml.reporting.html import HtmlReport

_NOT_A_LEAGUE_TABLE = (
    "Hospitals are listed by name, never ranked. A point outside a funnel limit means "
    "'more different than chance explains at this volume', not 'worse'; check case mix, "
    "referral pathway and data completeness before talking about skill."
)
_KEY_INDICATORS = (
    "malignant diagnosis rate (crude)",
    "malignant diagnoses, observed/expected",
    "AI–clinician discordance",
    "agreement with expert reference",
    "malignancy sensitivity vs",
    "out-of-distribution rate",
    "by device",
)


def _funnel_section(
    rep: HtmlReport, funnels: list[tuple[str, FunnelResult]], *, keys: tuple[str, ...]
) -> None:
    for analysis, f in funnels:
        if not any(k in f.indicator for k in keys):
            continue
        rep.heading(f"Funnel: {f.indicator}", 3)
        rep.figure(
            plots.funnel_plot(f),
            caption=f"{analysis}; target {f.target * f.scale:.4g}; {f.overdispersion.describe()}.",
        )
        cols = [
            "unit",
            "volume",
            "events",
            "value",
            "ci_low",
            "ci_high",
            "z_adjusted",
            "status",
            "direction",
        ]
        t = f.table[cols].copy()
        for c in ("value", "ci_low", "ci_high"):
            t[c] = t[c] * f.scale
        rep.table(t)


def _flags_section(rep: HtmlReport, flags: pd.DataFrame) -> None:
    rep.heading("Flagged hospitals and devices")
    if flags.empty:
        rep.paragraph(
            "Nothing lies outside the 95% funnel limits and no CUSUM or image-shift signal fired."
        )
        return
    rep.paragraph(_NOT_A_LEAGUE_TABLE, css_class="small")
    rep.table(flags[["unit", "unit_type", "level", "analysis", "indicator", "reason"]])


def _exclusions_section(
    rep: HtmlReport, excluded: pd.DataFrame, hospitals_without: list[str]
) -> None:
    rep.heading("Excluded rows (nothing is dropped silently)")
    if excluded.empty and not hospitals_without:
        rep.paragraph("No row was excluded.")
        return
    if not excluded.empty:
        rep.paragraph(
            f"{len(excluded)} problem(s) in {excluded['row'].nunique()} row(s); the full list is "
            "in "
            "excluded_rows.csv. Row numbers count data rows from 1 (the header is not counted)."
        )
        rep.table(describe_exclusions(excluded))
        rep.table(excluded.head(50))
    if hospitals_without:
        rep.paragraph(
            "Hospitals in the --hospitals list with no usable records: "
            f"{', '.join(hospitals_without)}."
        )


def records_report(res, opts, records: Records) -> HtmlReport:
    """Build the report for ``skinml-qc records``."""
    sim = " (SIMULATED DATA)" if opts.simulated else ""
    rep = HtmlReport(
        opts.title + sim,
        f"Source: {records.source} · generated {date.today().isoformat()} · seed {opts.seed}",
    )
    s = res.summary
    lines = [
        f"{s['records_used']} records from {s['hospitals']} hospitals analysed; "
        f"{s['rows_excluded_from_all']} row(s) excluded from all analyses "
        f"({s['exclusion_entries']} "
        "problem entries in total, listed below and in excluded_rows.csv).",
        f"{s['flags']} flag(s) on {len(s['flagged_units'])} unit(s): "
        + (", ".join(s["flagged_units"][:30]) or "none")
        + ".",
        _NOT_A_LEAGUE_TABLE,
    ]
    if opts.simulated:
        lines.insert(0, "These records are SIMULATED; no real hospital is described.")
    rep.verdict(lines, tone="warn" if s["flags"] else "good")
    for note in res.notes:
        rep.paragraph(note, css_class="small")
    _flags_section(rep, res.flags)

    rep.heading("Diagnosis mix")
    o = s["mix_overall_crude"]
    rep.paragraph(
        f"Crude: χ² = {o['chi2']:.1f} on {o['df']} df (p = {o['p_value']:.2g}), Cramér's V = "
        f"{o['cramers_v']:.3f} "
        f"over {o['n']} cases. Each cell's adjusted residual is ≈ N(0, 1) if hospital and "
        "diagnosis were "
        "unrelated; |residual| > 3.09 corresponds to the 99.8% level."
    )
    rep.figure(
        plots.mix_plot(res.tables["mix_crude"], title="Diagnosis shares per hospital (crude)")
    )
    rep.figure(
        plots.oe_heatmap(
            res.tables["mix_crude"],
            value="adjusted_residual",
            title="Crude adjusted residuals (hospital vs pooled mix)",
        )
    )
    if "mix_adjusted" in res.tables:
        adj = res.tables["mix_adjusted"].copy()
        ma = s["mix_adjusted"]
        rep.paragraph(
            f"Adjusted for case mix ({', '.join(ma['covariates'])}) by indirect standardisation: "
            "a pooled "
            "multinomial model on the covariates alone predicts each case's diagnosis; each "
            "hospital's observed "
            "count is compared with the sum of its cases' predictions (O/E). Total Pearson χ² "
            "falls from "
            f"{ma['pearson_chi2_crude_total']:.1f} (crude) to "
            f"{ma['pearson_chi2_adjusted_total']:.1f} "
            "(observed vs case-mix expected): the part that disappears is explained by who the "
            "hospital sees."
        )
        rep.figure(
            plots.oe_heatmap(
                adj,
                value="standardized_residual",
                title="Standardised residuals after case-mix adjustment (O − E)/SD",
            )
        )
        rep.table(res.tables["mix_tests"])
    else:
        rep.table(res.tables["mix_tests"])
        rep.paragraph(
            "No case-mix covariates were available, so only the crude comparison is shown.",
            css_class="small",
        )

    rep.heading("Funnel plots")
    rep.paragraph(
        "Each point is a unit; dashed lines are the 95% limits (alert), dotted the 99.8% limits "
        "(alarm). "
        "Exact binomial/Poisson limits are used unless the units vary more than chance allows, "
        "in which "
        "case the limits are widened by the estimated overdispersion (Spiegelhalter 2005; 2012). "
        "Per-diagnosis "
        "funnels are in funnels.csv and feed the flags table.",
        css_class="small",
    )
    _funnel_section(rep, res.funnels, keys=_KEY_INDICATORS)

    for ref, label in (("reference", "expert reference"), ("ai", "AI")):
        if f"agreement_{ref}" in res.tables:
            rep.heading(f"Agreement with the {label}")
            rep.paragraph(
                "κ: Cohen's kappa with a 95% case-bootstrap interval; sensitivity/specificity of "
                "the "
                "malignant/benign call with Wilson 95% intervals.",
                css_class="small",
            )
            rep.table(res.tables[f"agreement_{ref}"].drop(columns=["reference"]))
    if "shared_case_alpha" in s:
        a = s["shared_case_alpha"]
        rep.heading("Agreement across hospitals on shared cases")
        rep.paragraph(
            f"Krippendorff's α = {a['krippendorff_alpha']:.3f} (95% CI {a['ci_low']:.3f} to "
            f"{a['ci_high']:.3f}; "
            f"{a['shared_cases']} cases read by ≥ 2 of {a['hospitals']} hospitals; missing "
            "readings allowed)."
        )
        rep.table(res.tables["shared_case_agreement"])

    for grp in ("hospital", "device"):
        if f"model_behaviour_{grp}" in res.tables:
            rep.heading(f"Model confidence and out-of-distribution rate by {grp}")
            rep.table(res.tables[f"model_behaviour_{grp}"])
        if f"image_shift_{grp}" in res.tables:
            rep.heading(f"Image statistics by {grp}")
            t = res.tables[f"image_shift_{grp}"]
            rep.paragraph(
                "Cohen's d of each group's mean against all other images (95% CI); "
                "Kruskal–Wallis p "
                "across all groups. Large |d| means the pictures differ, which can change both "
                "clinicians' and the model's calls.",
                css_class="small",
            )
            rep.table(t)

    if "cusum_summary" in res.tables:
        rep.heading("Change over time (monthly CUSUM)")
        cs = res.tables["cusum_summary"]
        rep.paragraph(
            "Bernoulli CUSUM per hospital on monthly counts; h set by simulation so that an "
            "in-control hospital "
            f"signals with probability {opts.cusum_false_alarm:.0%} over its own months.",
            css_class="small",
        )
        rep.table(cs)
        for h in list(cs.loc[cs["signal"], "hospital"].unique())[:3]:
            rep.figure(plots.cusum_plot(res.tables["cusum_monthly"], h))

    _exclusions_section(rep, res.excluded, records.hospitals_without_records)
    _methods(rep, opts)
    return rep


def rates_report(
    funnels: list[FunnelResult],
    table: pd.DataFrame,
    excluded: pd.DataFrame,
    *,
    title: str,
    source: str,
    notes: list[str],
) -> HtmlReport:
    """Build the report for ``skinml-qc rates``."""
    rep = HtmlReport(title, f"Source: {source} · generated {date.today().isoformat()}")
    flagged = sorted(
        {
            u
            for f in funnels
            for u in f.table.loc[f.table["status"].isin(["alert", "alarm"]), "unit"]
        }
    )
    rep.verdict(
        [
            f"{len(table)} units, {int(table['events'].sum())} events over "
            f"{table['exposure'].sum():,.0f} units of exposure.",
            "Outside a 95% limit in at least one funnel: "
            f"{', '.join(map(str, flagged)) or 'none'}.",
            _NOT_A_LEAGUE_TABLE,
        ],
        tone="warn" if flagged else "good",
    )
    for n in notes:
        rep.paragraph(n, css_class="small")
    for f in funnels:
        rep.heading(f.indicator)
        rep.figure(
            plots.funnel_plot(f),
            caption=f"target {f.target * f.scale:.4g}; {f.overdispersion.describe()}",
        )
        t = f.table[
            ["unit", "volume", "events", "value", "ci_low", "ci_high", "z_adjusted", "status"]
        ].copy()
        for c in ("value", "ci_low", "ci_high"):
            t[c] = t[c] * f.scale
        rep.table(t)
    rep.heading("Per-unit table")
    rep.table(table)
    rep.heading("Excluded rows")
    rep.paragraph(
        "No row was excluded."
        if excluded.empty
        else f"{len(excluded)} row(s); see excluded_rows.csv."
    )
    if not excluded.empty:
        rep.table(excluded.head(50))
    return rep


def _methods(rep: HtmlReport, opts) -> None:
    rep.heading("Methods")
    rep.verdict(
        [
            "Funnel limits: exact binomial (proportions) or Poisson (rates; observed/expected "
            "ratios) with "
            "interpolation between integer counts (Spiegelhalter 2005). Overdispersion: φ from "
            "z-scores "
            "winsorised at 10% per tail, tested with I·φ ~ χ²(I−1); when significant the limits "
            "use the "
            f"'{opts.overdispersion}' correction (additive: DerSimonian–Laird τ², Spiegelhalter "
            "et al. 2012).",
            "Alert: outside the 95% limit; alarm: outside the 99.8% limit. Many indicators are "
            "checked, so "
            "expect about one alert per 20 unit-indicator pairs by chance alone; alarms are "
            "rarer (1 in 500).",
            "Case-mix adjustment: multinomial logistic regression (scikit-learn, L2 C = 1) on "
            "banded covariates "
            "without a hospital term; expected counts summed per hospital (indirect "
            "standardisation).",
            f"Malignant codes: {', '.join(sorted(opts.malignant))}.",
            f"Bootstrap: {opts.n_bootstrap} case resamples, seed {opts.seed}.",
        ]
    )
