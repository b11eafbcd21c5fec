"""Matplotlib figures for the QC report (Agg backend; returned, never shown)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from skinml.qc.funnel import FunnelResult, _level_name, funnel_limits

_STATUS_COLOURS = {
    "within": "#4a6fa5",
    "alert": "#d9822b",
    "alarm": "#c0392b",
    "no cases": "#999999",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def funnel_plot(
    result: FunnelResult,
    *,
    label_points: bool = True,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Indicator against volume with the target line and the 95% / 99.8% limits.

    Points are coloured by status and labelled by name; there is no ranking. Values are
    drawn in display units (× ``result.scale``), and the axis says so (e.g. "per 100,000").
    With ``ax`` the funnel is drawn into an existing axes (a grid) and its figure returned.
    """
    plt = _pyplot()
    t = result.table[result.table["volume"] > 0]
    small = ax is not None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
    else:
        fig = ax.figure
    if t.empty:
        ax.text(0.5, 0.5, "no units with volume > 0", ha="center", transform=ax.transAxes)
        ax.set_title(title if title is not None else result.indicator, fontsize=9)
        return fig
    vmin, vmax = max(t["volume"].min() * 0.7, 1e-9), t["volume"].max() * 1.3
    grid = np.geomspace(vmin, vmax, 300) if vmax / vmin > 20 else np.linspace(vmin, vmax, 300)
    lim = funnel_limits(grid, result.target, result.kind, result.levels, result.overdispersion)
    s = result.scale
    ax.axhline(result.target * s, color="black", lw=1, label=f"target {result.target * s:.4g}")
    for level, style in zip(sorted(result.levels), ("--", ":"), strict=False):
        name = _level_name(level)
        ax.plot(grid, lim[f"lower_{name}"] * s, "k" + style, lw=1, label=f"{name}% limits")
        ax.plot(grid, lim[f"upper_{name}"] * s, "k" + style, lw=1)
    colours = t["status"].map(_STATUS_COLOURS).fillna("#4a6fa5")
    ax.scatter(
        t["volume"], t["value"] * s, c=list(colours), s=28, zorder=3, edgecolors="white", lw=0.5
    )
    if vmax / vmin > 20:
        ax.set_xscale("log")
    ax.set_xlabel(result.volume_label)
    ax.set_ylabel(_value_label(result))
    ax.set_title(result.indicator if title in (None, "") else title, fontsize=8 if small else 10)
    legend = ax.legend(fontsize=6 if small else 7, loc="best")
    ax.grid(alpha=0.25)
    if label_points:
        _label_or_say_why(ax, t, s, legend)
    return fig


def _label_or_say_why(ax: Any, table: pd.DataFrame, scale: float, legend: Any) -> None:
    n_unlabelled = place_labels(ax, table, scale, avoid=[legend] if legend else [])
    if n_unlabelled:  # said under the axis, where it cannot cover a point or a label
        ax.set_xlabel(
            f"{ax.get_xlabel()}  ({n_unlabelled} unit(s) not labelled for lack of space; "
            "see the table)"
        )


#: label positions tried around a point, in points: right-above first, then the others.
_LABEL_OFFSETS = (
    (4, 3, "left", "bottom"),
    (4, -3, "left", "top"),
    (-4, 3, "right", "bottom"),
    (-4, -3, "right", "top"),
    (0, 6, "center", "bottom"),
    (0, -6, "center", "top"),
    (10, 10, "left", "bottom"),
    (-10, -10, "right", "top"),
)


def place_labels(ax: Any, table: pd.DataFrame, scale: float, *, avoid: list[Any] = ()) -> int:
    """Label each unit where its name overlaps no other label and stays inside the axes.

    Flagged units (alarm, then alert) are placed first, then the largest ones, so the
    names a reader needs are the ones that get space. Units whose name fits nowhere
    are left unlabelled; the count is returned so the plot can say so.
    """
    fig = ax.figure
    ax.set_xlim(ax.get_xlim())  # settle the lazy autoscale: positions must not move later
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer).padded(-2)
    taken = []
    for artist in avoid:
        box = artist.get_window_extent(renderer)
        taken.append(box)
        if hasattr(artist, "set_loc"):  # pin a loc="best" legend: labels must not move it
            artist.set_loc(tuple(ax.transAxes.inverted().transform((box.x0, box.y0))))
    rank = {"alarm": 0, "alert": 1}
    order = sorted(
        range(len(table)),
        key=lambda i: (rank.get(table["status"].iloc[i], 2), -float(table["volume"].iloc[i])),
    )
    unlabelled = 0
    for i in order:
        row = table.iloc[i]
        for dx, dy, ha, va in _LABEL_OFFSETS:
            text = ax.annotate(
                str(row["unit"]),
                (row["volume"], row["value"] * scale),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=6.5,
            )
            box = text.get_window_extent(renderer)
            fits = (
                inside.x0 <= box.x0
                and box.x1 <= inside.x1
                and inside.y0 <= box.y0
                and box.y1 <= inside.y1
            )
            if fits and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            text.remove()
        else:
            unlabelled += 1
    return unlabelled


def funnel_grid(funnels: list[FunnelResult], *, title: str, ncols: int = 2) -> Any:
    """Several funnels side by side (e.g. every indicator of one diagnosis) in one figure."""
    plt = _pyplot()
    n = max(len(funnels), 1)
    cols = min(ncols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, f in zip(axes.ravel(), funnels, strict=False):
        funnel_plot(f, ax=ax, title="", label_points=False)
    for ax in axes.ravel()[len(funnels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()  # before the labels: they are placed in the final axes positions
    for ax, f in zip(axes.ravel(), funnels, strict=False):
        shown = f.table[f.table["volume"] > 0]
        if not shown.empty:
            _label_or_say_why(ax, shown, f.scale, ax.get_legend())
    return fig


def _value_label(result: FunnelResult) -> str:
    if result.scale != 1:
        return f"{result.indicator.split(' (')[0]} per {result.scale:,.0f} {result.volume_label}"
    if result.kind == "binomial":
        return "proportion"
    return "observed / expected" if result.target == 1.0 else "rate"


def mix_plot(cells: pd.DataFrame, *, value: str = "share", title: str = "") -> Any:
    """Stacked bars of each hospital's diagnosis shares (hospitals in name order)."""
    plt = _pyplot()
    wide = cells.pivot(index="hospital", columns="diagnosis", values=value).fillna(0.0).sort_index()
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(wide) + 1.8))
    left = np.zeros(len(wide))
    cmap = plt.get_cmap("tab20")
    for i, col in enumerate(wide.columns):
        ax.barh(wide.index.astype(str), wide[col], left=left, color=cmap(i % 20), label=str(col))
        left += wide[col].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("share of the hospital's cases")
    ax.set_title(title, fontsize=10)
    ax.legend(
        fontsize=7, ncol=min(len(wide.columns), 7), loc="upper center", bbox_to_anchor=(0.5, -0.18)
    )
    return fig


def oe_heatmap(cells: pd.DataFrame, *, value: str, title: str) -> Any:
    """Heatmap of a residual or log O/E per hospital × diagnosis (diverging colours)."""
    plt = _pyplot()
    wide = cells.pivot(index="hospital", columns="diagnosis", values=value).sort_index()
    arr = wide.to_numpy(dtype=float)
    lim = np.nanmax(np.abs(arr[np.isfinite(arr)])) if np.isfinite(arr).any() else 1.0
    fig, ax = plt.subplots(figsize=(0.8 * wide.shape[1] + 3, 0.4 * wide.shape[0] + 1.6))
    im = ax.imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(
        range(wide.shape[1]), [str(c) for c in wide.columns], rotation=45, ha="right", fontsize=8
    )
    ax.set_yticks(range(wide.shape[0]), [str(i) for i in wide.index], fontsize=8)
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            if np.isfinite(arr[i, j]):
                ax.text(j, i, f"{arr[i, j]:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    return fig


def cusum_plot(paths: pd.DataFrame, hospital: str) -> Any:
    """Monthly CUSUM paths of one hospital with their thresholds."""
    plt = _pyplot()
    sub = paths[paths["hospital"] == hospital]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for (ind, direction), p in sub.groupby(["indicator", "direction"], sort=True):
        line = ax.plot(p["month"], p["cusum"], marker="o", ms=3, label=f"{ind} ({direction})")
        ax.axhline(p["h"].iloc[0], color=line[0].get_color(), ls="--", lw=0.8)
    ax.set_title(f"CUSUM by month: {hospital} (dashed: threshold h)", fontsize=10)
    ax.set_ylabel("CUSUM")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend(fontsize=7)
    return fig
