"""The self-contained HTML report for a quality lead (built on :class:`HtmlReport`).

Order of sections follows the questions a reader asks: is anything flagged and
why; is the data complete; does the diagnosis mix differ, and does case mix
explain it; how do hospitals agree with experts and the AI; are the images
themselves different; did anything change over time; how was it computed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from skinml.qc import plots
from skinml.qc.funnel import FunnelResult, as_counts
from skinml.qc.records import Records, describe_exclusions
from skinml.qc.summary_text import NOT_A_LEAGUE_TABLE as _NOT_A_LEAGUE_TABLE
from skinml.qc.summary_text import overdispersion_line
from skinml.qc.unit_pages import UnitTable, file_names, write_unit_pages
from skinml.reporting.html import HtmlReport
from skinml.reporting.text import format_p, format_p_cell

PLOTS_DIR = "funnel_plots"
_FUNNEL_COLUMNS = [
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
        rep.figure(plots.funnel_plot(f), caption=_caption(analysis, f))
        rep.table(_funnel_rows(f))


def _funnel_rows(f: FunnelResult) -> pd.DataFrame:
    """A funnel's table as shown: display units, and the unit in the header when scaled."""
    t = f.display_table()[_FUNNEL_COLUMNS]
    if f.scale == 1:
        return t
    per = f"per {f.scale:,.0f}"
    return t.rename(columns={c: f"{c} ({per})" for c in ("value", "ci_low", "ci_high")})


def _caption(analysis: str, f: FunnelResult) -> str:
    per = f" per {f.scale:,.0f}" if f.scale != 1 else ""
    return (
        f"{analysis}; target {f.target * f.scale:.4g}{per}; {f.overdispersion.describe(f.scale)}."
    )


def _per_diagnosis_section(
    rep: HtmlReport, funnels: list[tuple[str, FunnelResult]], out_dir: Path | None
) -> None:
    """One grid of funnels per diagnosis, embedded and written to ``funnel_plots/``."""
    by_dx: dict[str, list[FunnelResult]] = {}
    for _, f in funnels:
        if f.diagnosis is not None:
            by_dx.setdefault(f.diagnosis, []).append(f)
    if not by_dx:
        return
    rep.heading("Per-diagnosis funnels")
    rep.paragraph(
        "Each diagnosis's share of a hospital's cases (crude and, with covariates, against its "
        "case mix) and, with a reference, how often it is called when the reference says so "
        "(sensitivity) and when it does not (over-call). "
        + (f"Also written as {PLOTS_DIR}/diagnosis_<name>.png." if out_dir else "")
    )
    names = file_names(list(by_dx), ".png")
    for dx in sorted(by_dx):
        save = out_dir / PLOTS_DIR / f"diagnosis_{names[dx]}" if out_dir else None
        rep.figure(
            plots.funnel_grid(by_dx[dx], title=f"Diagnosis: {dx}"),
            caption=f"{dx}: {len(by_dx[dx])} funnel(s); rows in funnels.csv (diagnosis = {dx}).",
            save_to=save,
        )


def _p_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """p-value columns as text ("< 0.001", never "0.000")."""
    out = frame.copy()
    for c in out.columns:
        if c.startswith("p_value") or c.endswith("_p_all_groups"):
            out[c] = out[c].map(format_p_cell)
    return out


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


def records_report(res, opts, records: Records, out_dir: Path | None = None) -> HtmlReport:
    """Build the report for ``skinml-qc records``.

    With ``out_dir`` the per-diagnosis funnel grids are also written as PNGs and one page
    per hospital is written to ``units/`` and linked from the report.
    """
    sim = " (SIMULATED DATA)" if opts.simulated else ""
    rep = HtmlReport(
        opts.title + sim,
        f"Source: {records.source} · generated {date.today().isoformat()} · seed {opts.seed}",
    )
    s = res.summary
    rep.verdict(s["summary_lines"], tone="warn" if s["flags"] else "good")
    for note in res.notes:
        rep.paragraph(note, css_class="small")
    _flags_section(rep, res.flags)
    if out_dir is not None:
        rep.heading("Per-hospital pages")
        links = _hospital_pages(res, opts, out_dir)
        rep.links([(href, unit) for unit, href in sorted(links.items())])

    rep.heading("Diagnosis mix")
    o = s["mix_overall_crude"]
    rep.paragraph(
        f"Crude: χ² = {o['chi2']:.1f} on {o['df']} df ({format_p(o['p_value'])}), Cramér's V = "
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
        rep.table(_p_cells(res.tables["mix_tests"]))
    else:
        rep.table(_p_cells(res.tables["mix_tests"]))
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
        "Per-diagnosis funnels follow below, are in funnels.csv and feed the flags table.",
        css_class="small",
    )
    _funnel_section(rep, res.funnels, keys=_KEY_INDICATORS)
    _per_diagnosis_section(rep, res.funnels, out_dir)

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
            rep.table(_p_cells(t))

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
    _methods(rep, opts, res.summary.get("malignant_set", []))
    return rep


def _hospital_pages(res, opts, out_dir: Path) -> dict[str, str]:
    """Write one page per hospital (see :mod:`skinml.qc.unit_pages`); return the links."""
    hosp = res.tables["hospitals"]
    tables = [UnitTable("Diagnosis mix (crude)", res.tables["mix_crude"])]
    for name, title in (
        ("mix_adjusted", "Diagnosis mix against case mix (observed / expected)"),
        ("agreement_reference", "Agreement with the expert reference"),
        ("agreement_ai", "Agreement with the AI"),
        ("shared_case_agreement", "Agreement with other hospitals on shared cases"),
        ("model_behaviour_hospital", "Model confidence and out-of-distribution rate"),
        ("image_shift_hospital", "Image statistics against all other images"),
        ("cusum_summary", "Change over time (monthly CUSUM)"),
    ):
        if name in res.tables and "hospital" in res.tables[name]:
            tables.append(UnitTable(title, _p_cells(res.tables[name])))
    return write_unit_pages(
        out_dir,
        units=list(hosp["hospital"].astype(str)),
        unit_type="hospital",
        funnels=[(a, f) for a, f in res.funnels if f.table["unit_type"].iloc[0] == "hospital"],
        flags=res.flags,
        tables=tables,
        header_lines=[
            overdispersion_line(res.summary["hospitals"]),
            res.summary["malignant_indicators"],
        ],
        counts={
            str(h): f"{int(n)} cases" for h, n in zip(hosp["hospital"], hosp["cases"], strict=True)
        },
        title=opts.title + (" (SIMULATED DATA)" if opts.simulated else ""),
    )


def rates_report(
    funnels: list[FunnelResult],
    table: pd.DataFrame,
    excluded: pd.DataFrame,
    *,
    title: str,
    source: str,
    notes: list[str],
    lines: list[str],
    out_dir: Path | None = None,
) -> HtmlReport:
    """Build the report for ``skinml-qc rates`` (with ``out_dir``: also one page per unit)."""
    rep = HtmlReport(title, f"Source: {source} · generated {date.today().isoformat()}")
    flagged = any(f.table["status"].isin(["alert", "alarm"]).any() for f in funnels)
    rep.verdict(lines, tone="warn" if flagged else "good")
    for n in notes:
        rep.paragraph(n, css_class="small")
    shown = _display_counts(table)
    if out_dir is not None:
        rep.heading("Per-unit pages")
        units = list(table["hospital"].astype(str))
        links = write_unit_pages(
            out_dir,
            units=units,
            unit_type="hospital",
            funnels=[("rate funnel", f) for f in funnels],
            flags=_rate_flags(funnels),
            tables=[UnitTable("Counts", shown)],
            header_lines=[overdispersion_line(len(units), "units")],
            title=title,
            unit_label="unit",
        )
        rep.links([(href, unit) for unit, href in sorted(links.items())])
    for f in funnels:
        rep.heading(f.indicator)
        rep.figure(plots.funnel_plot(f), caption=_caption("rate funnel", f))
        rep.table(_funnel_rows(f))
    rep.heading("Per-unit table")
    rep.table(shown)
    rep.heading("Excluded rows")
    rep.paragraph(
        "No row was excluded."
        if excluded.empty
        else f"{len(excluded)} row(s); see excluded_rows.csv."
    )
    if not excluded.empty:
        rep.table(excluded.head(50))
    return rep


def _display_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Events as integer counts and person-years as whole numbers (rates stay per ``per``)."""
    out = table.rename(columns={"exposure": "person_years"})
    out["events"] = as_counts(out["events"])
    out["person_years"] = out["person_years"].round().astype("Int64")
    return out


def _rate_flags(funnels: list[FunnelResult]) -> pd.DataFrame:
    from skinml.qc.flags import combine_flags, funnel_flags

    return combine_flags([funnel_flags(f, analysis="rate funnel") for f in funnels])


def _methods(rep: HtmlReport, opts, malignant_set: list[str]) -> None:
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
            f"Malignant codes: {', '.join(sorted(opts.malignant))} (present here: "
            f"{', '.join(malignant_set) or 'none, so no malignancy indicator was computed'}).",
            f"Bootstrap: {opts.n_bootstrap} case resamples, seed {opts.seed}.",
        ]
    )
