"""Matplotlib figures for the trainee report (Agg backend, small and legible)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

MALIGNANT_COLOUR = "#c0392b"
BENIGN_COLOUR = "#2f6fdb"
AI_COLOUR = "#7d3c98"
GREY = "#8a97a6"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def per_diagnosis_bars(table: pd.DataFrame, wilson: Sequence[tuple[float, float]]):
    """Sensitivity per diagnosis with 95% intervals, the AI and the cohort median as markers."""
    plt = _plt()
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.2, 0.55 * n + 1.2))
    y = np.arange(n)[::-1]
    colours = [MALIGNANT_COLOUR if m else BENIGN_COLOUR for m in table["malignant"]]
    sens = table["sensitivity"].to_numpy(float)
    ax.barh(y, sens, color=colours, alpha=0.85, height=0.6, label="you")
    lo = np.array([w[0] for w in wilson])
    hi = np.array([w[1] for w in wilson])
    err = [np.clip(sens - lo, 0, None), np.clip(hi - sens, 0, None)]
    ax.errorbar(sens, y, xerr=err, fmt="none", ecolor="#1d2733", capsize=3, lw=1)
    if table["ai_sensitivity"].notna().any():
        ax.scatter(
            table["ai_sensitivity"], y, marker="D", color=AI_COLOUR, zorder=3, s=36, label="AI"
        )
    if table["cohort_median_sensitivity"].notna().any():
        ax.scatter(
            table["cohort_median_sensitivity"],
            y,
            marker="|",
            color="black",
            zorder=3,
            s=260,
            linewidths=2,
            label="cohort median",
        )
    labels = [
        f"{d}  ({c}/{t})"
        for d, c, t in zip(table["diagnosis"], table["n_correct"], table["n_cases"], strict=True)
    ]
    ax.set_yticks(y, labels)
    for tick, colour in zip(ax.get_yticklabels(), colours, strict=True):
        tick.set_color(colour)
    ax.set_xlim(0, 1.02)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("share of cases of this diagnosis you named correctly (sensitivity)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(
        "red = malignant diagnoses; bars show 95% Wilson intervals", fontsize=9, color="#5b6b7c"
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def confusion_figure(
    confusion: np.ndarray, classes: Sequence[str], present: np.ndarray, malignant: Sequence[str]
):
    """Rows = the key, columns = your answers (+ unanswered); cell colour = share of the row."""
    plt = _plt()
    rows = [c for c, p in zip(classes, present, strict=True) if p]
    mat = confusion[present]
    cols = [*classes, "blank"]
    keep_cols = np.ones(len(cols), dtype=bool)
    keep_cols[-1] = mat[:, -1].sum() > 0
    mat = mat[:, keep_cols]
    cols = [c for c, k in zip(cols, keep_cols, strict=True) if k]
    share = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.62 * len(cols) + 2.2, 0.55 * len(rows) + 1.6))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if mat[i, j]:
                correct = rows[i] == cols[j]
                ax.text(
                    j,
                    i,
                    str(mat[i, j]),
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="white" if share[i, j] > 0.55 else "#1d2733",
                    fontweight="bold" if correct else "normal",
                )
    ax.set_xticks(range(len(cols)), cols, rotation=0)
    ax.set_yticks(range(len(rows)), rows)
    for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        if tick.get_text() in malignant:
            tick.set_color(MALIGNANT_COLOUR)
    ax.set_xlabel("your answer")
    ax.set_ylabel("reference diagnosis")
    ax.set_xticks(np.arange(len(cols) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    return fig


def cohort_histogram(accuracies: np.ndarray, you: float, ai: float | None):
    """The cohort's accuracies with your score (and the AI's) marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 2.4))
    bins = np.linspace(0, 1, 21)
    ax.hist(accuracies, bins=bins, color=GREY, alpha=0.7, edgecolor="white")
    ax.axvline(you, color=BENIGN_COLOUR, lw=3, label=f"you ({you:.0%})")
    if ai is not None and np.isfinite(ai):
        ax.axvline(ai, color=AI_COLOUR, lw=2, ls="--", label=f"AI ({ai:.0%})")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("accuracy on this teaching set (latest session of each trainee)")
    ax.set_ylabel("trainees")
    ax.legend(fontsize=8, loc="upper left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def reference_levels(groups: Mapping[str, np.ndarray], anchors: Mapping[str, float], you: float):
    """Published clinician score distributions (box plots) and point anchors, with your score."""
    plt = _plt()
    names = list(groups)
    n_rows = len(names) + len(anchors)
    fig, ax = plt.subplots(figsize=(7.2, 0.5 * n_rows + 1.1))
    y = np.arange(n_rows)[::-1]
    if names:
        ax.boxplot(
            [groups[g] for g in names],
            positions=y[: len(names)],
            orientation="horizontal",
            widths=0.5,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "#e3e8ee", "edgecolor": GREY},
            medianprops={"color": "#1d2733"},
        )
    for k, value in enumerate(anchors.values()):
        ax.scatter([value], [y[len(names) + k]], marker="o", color="#1d2733", s=40, zorder=3)
        ax.text(value + 0.015, y[len(names) + k], f"{value:.1%}", va="center", fontsize=8)
    ax.axvline(you, color=BENIGN_COLOUR, lw=3, label=f"you ({you:.0%})")
    ax.set_yticks(y, [*names, *anchors])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("share of correct diagnoses (different tests: a rough orientation only)")
    ax.legend(fontsize=8, loc="lower left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def progress_figure(progress: pd.DataFrame):
    """Accuracy and malignant sensitivity across sessions."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 2.6))
    x = np.arange(len(progress))
    ax.plot(x, progress["accuracy"], marker="o", color=BENIGN_COLOUR, label="accuracy")
    ax.plot(
        x,
        progress["malignant_sensitivity"],
        marker="s",
        color=MALIGNANT_COLOUR,
        label="malignant lesions caught",
    )
    ax.set_xticks(x, [s or f"#{i + 1}" for i, s in enumerate(progress["session"])])
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("session")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def ai_change_figure(per_sheet: pd.DataFrame):
    """Accuracy on one's own vs with the AI, one line per session, coloured by experience."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    years = per_sheet["years_training"].to_numpy(float)
    known = np.isfinite(years)
    cmap = plt.get_cmap("viridis")
    top = max(float(np.nanmax(years)) if known.any() else 1.0, 1.0)
    for u, a, y in zip(
        per_sheet["unaided_accuracy"], per_sheet["aided_accuracy"], years, strict=True
    ):
        colour = GREY if not np.isfinite(y) else cmap(min(y / top, 1.0) * 0.9)
        ax.plot([0, 1], [u, a], "-o", color=colour, alpha=0.8, lw=1.4, ms=4)
    ax.set_xticks([0, 1], ["on their own", "with the AI"])
    ax.set_xlim(-0.25, 1.25)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_ylabel("correct diagnoses")
    ax.grid(axis="y", alpha=0.3)
    if known.any():
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, top / 0.9))
        fig.colorbar(sm, ax=ax, label="years of training")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig
