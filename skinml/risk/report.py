"""Plots and the self-contained HTML report of one risk run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SIMULATED_BANNER = (
    "SIMULATED DATA: the cohort was generated from published GWAS odds ratios and survey risk "
    "factors (skinml.risk.simulate); no real individuals. Numbers describe the simulator, "
    "not patients."
)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_figure(y: np.ndarray, curves: dict[str, np.ndarray], title: str) -> Any:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_figure(table: pd.DataFrame, title: str) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    hi = float(max(table["mean_predicted"].max(), table["observed"].max()) * 1.1 or 1.0)
    ax.plot([0, hi], [0, hi], ls=":", c="grey", label="perfect calibration")
    ax.plot(
        table["mean_predicted"], table["observed"], marker="o", label="model (equal-count bins)"
    )
    ax.set(
        xlabel="mean predicted risk",
        ylabel="observed risk",
        title=title,
        xlim=(0, hi),
        ylim=(0, hi),
    )
    ax.legend(fontsize=8)
    return fig


def decision_curve_figure(dca: pd.DataFrame, title: str) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(dca["threshold"], dca["net_benefit_model"], label="model")
    ax.plot(dca["threshold"], dca["net_benefit_treat_all"], ls="--", label="treat all")
    ax.axhline(0, c="grey", ls=":", label="treat none")
    top = float(max(dca["net_benefit_model"].max(), dca["net_benefit_treat_all"].max(), 1e-4))
    ax.set(
        xlabel="threshold probability",
        ylabel="net benefit",
        title=title,
        ylim=(-0.2 * top, 1.2 * top),
    )
    ax.legend(fontsize=8)
    return fig


def contributions_figure(contrib: pd.DataFrame, title: str) -> Any:
    plt = _plt()
    mean_abs = contrib.abs().mean().sort_values()
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(mean_abs))))
    ax.barh(mean_abs.index.astype(str), mean_abs.to_numpy())
    ax.set(xlabel="mean |contribution| (log-odds, before calibration)", title=title)
    return fig


def top_factors(contrib_row: pd.Series, k: int = 3) -> str:
    """``"HLA-C tag (+1.20); smoking (+0.41)"``: the k largest risk-raising contributions."""
    s = contrib_row.sort_values(ascending=False)
    s = s[s > 0].head(k)
    return "; ".join(f"{name} ({val:+.2f})" for name, val in s.items())


def write_report(
    path: Path,
    *,
    title: str,
    simulated: bool,
    summary_lines: list[str],
    tables: dict[str, pd.DataFrame],
    figures: dict[str, Any],
    notes: list[str],
) -> Path:
    """Assemble and write the one-file HTML report."""
    from skinml.reporting.html import HtmlReport

    rep = HtmlReport(title, subtitle="skinml-risk: psoriasis risk model report")
    if simulated:
        rep.verdict([SIMULATED_BANNER], tone="warn")
    rep.verdict(summary_lines, tone="good")
    for name, fig in figures.items():
        rep.heading(name)
        rep.figure(fig, caption=name)
    for name, frame in tables.items():
        rep.heading(name)
        if len(frame) == 1 and len(frame.columns) > 4:  # one record reads better as a list
            frame = pd.DataFrame(
                {"field": list(frame.columns), "value": [str(v) for v in frame.iloc[0]]}
            )
        rep.table(frame)
    if notes:
        rep.heading("Notes")
        for n in notes:
            rep.paragraph(n)
    return rep.write(path)
