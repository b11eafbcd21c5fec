"""Evaluation figures: confusion matrix, ROC curves, reliability diagram, subgroup forest plot.

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot (no global state, no GUI backend), ready for ``mlflow.log_figure``,
``fig.savefig`` or ``HtmlReport``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from skinml.evaluation._checks import check_classes, check_labels, check_probs
from skinml.evaluation.calibration import expected_calibration_error, reliability_bins


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], normalize: bool = True):
    """Confusion matrix heat map; rows are true classes, columns arg-max predictions.

    The prediction is the most probable class: the malignancy operating threshold
    plays no part here, and the title and axis say so, so that nobody reads the
    malignant column as the flag rate at the chosen threshold.

    With ``normalize`` the colour and the large number are row fractions (the
    per-class sensitivity on the diagonal) and the count is shown beneath, so
    rare classes are as readable as common ones.
    """
    cm = np.asarray(cm)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix has shape {cm.shape} for {k} classes")
    rows = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(rows > 0, cm / np.maximum(rows, 1), np.nan)
    shown = frac if normalize else cm
    size = max(4.0, 0.75 * k + 2)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(
        im, ax=ax, fraction=0.046, label="fraction of true class" if normalize else "cases"
    )
    vmax = np.nanmax(shown) if np.isfinite(shown).any() else 1
    for i in range(k):
        for j in range(k):
            text = f"{frac[i, j]:.2f}\n({cm[i, j]})" if normalize else f"{cm[i, j]}"
            dark = np.isfinite(shown[i, j]) and shown[i, j] > 0.6 * vmax
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted class (arg-max, no malignancy threshold)")
    ax.set_ylabel("true class")
    ax.set_title(
        "Confusion matrix, arg-max class"
        + (" (row-normalised; counts in brackets)" if normalize else "")
    )
    return fig


def plot_roc_curves(
    y_true: np.ndarray | Sequence,
    probs: np.ndarray,
    classes: Sequence[str],
    *,
    malignant: Sequence[str] | None = None,
    threshold: float | None = None,
    title: str = "ROC curves (one-vs-rest)",
):
    """One-vs-rest ROC curve per class, plus malignant-vs-benign when ``malignant`` is given.

    ``threshold`` marks the malignancy operating point on the malignant curve.
    Classes with no positive case are listed in the legend as "not defined".
    """
    p = check_probs(probs)
    y = check_labels(y_true, p.shape[1], classes=classes, n=len(p))
    fig = _figure(6.5, 6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    for k, name in enumerate(classes):
        hit = y == k
        if 0 < hit.sum() < len(y):
            fpr, tpr, _ = roc_curve(hit, p[:, k])
            ax.plot(
                fpr,
                tpr,
                lw=1.2,
                label=f"{name} (AUC {roc_auc_score(hit, p[:, k]):.3f}, n={int(hit.sum())})",
            )
        else:
            ax.plot([], [], lw=0, label=f"{name}: not defined (n={int(hit.sum())})")
    if malignant:
        idx = check_classes(classes, p.shape[1], malignant)
        y_mal = np.isin(y, idx)
        p_mal = p[:, idx].sum(axis=1)
        if 0 < y_mal.sum() < len(y):
            fpr, tpr, _ = roc_curve(y_mal, p_mal)
            auc = roc_auc_score(y_mal, p_mal)
            ax.plot(fpr, tpr, color="black", lw=2.5, label=f"malignant vs benign (AUC {auc:.3f})")
            if threshold is not None:
                sens = float(np.mean(p_mal[y_mal] >= threshold))
                fpr_t = float(np.mean(p_mal[~y_mal] >= threshold))
                ax.plot(
                    [fpr_t],
                    [sens],
                    "o",
                    ms=9,
                    mfc="none",
                    mec="red",
                    mew=2,
                    label=f"operating point t={threshold:.3g}",
                )
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_title(f"{title}, n={len(y)}")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_reliability(
    y_true: np.ndarray | Sequence,
    probs_before: np.ndarray,
    probs_after: np.ndarray | None = None,
    *,
    n_bins: int = 15,
    labels: tuple[str, str] = ("uncalibrated", "temperature-scaled"),
    title: str = "Reliability diagram (top-label)",
):
    """Reliability diagram before (and after) calibration, with ECE and a confidence histogram.

    Points on the diagonal are perfectly calibrated; points below it are
    over-confident. The lower panel shows how many cases each bin holds, so a
    wild point backed by three cases is not over-read.
    """
    series = [(labels[0], probs_before, "tab:red")]
    if probs_after is not None:
        series.append((labels[1], probs_after, "tab:blue"))
    fig = _figure(6, 6.5)
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="perfect calibration")
    width = 1.0 / n_bins
    for i, (name, pr, colour) in enumerate(series):
        table = reliability_bins(y_true, pr, n_bins)
        ece = expected_calibration_error(y_true, pr, n_bins)
        ok = table["n"] > 0
        ax.plot(
            table.loc[ok, "confidence"],
            table.loc[ok, "accuracy"],
            "o-",
            color=colour,
            label=f"{name} (ECE {ece:.3f})",
        )
        offset = (i - (len(series) - 1) / 2) * width / len(series)
        hist.bar(
            table["bin_low"] + width / 2 + offset,
            table["n"],
            width=width / len(series),
            color=colour,
            alpha=0.7,
        )
    ax.set_ylabel("observed accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}, n={len(np.asarray(y_true))}, {n_bins} bins")
    ax.legend(fontsize=8, loc="upper left")
    hist.set_xlabel("confidence (largest class probability)")
    hist.set_ylabel("cases")
    return fig


def plot_subgroups(
    table: pd.DataFrame,
    metrics: Sequence[str] = ("balanced_accuracy", "malignant_sensitivity"),
    *,
    title: str = "Subgroup performance (95% CI: Wilson for proportions, bootstrap otherwise)",
):
    """Forest plot of a :func:`~skinml.evaluation.subgroup_table`, one panel per metric.

    Small subgroups (``small=True``) are drawn hollow and grey (with their Wilson CI
    for proportions) and labelled as such; undefined values are written "n/a". The
    dashed line is the value on all cases.
    """
    metrics = [m for m in metrics if m in table.columns]
    if not metrics:
        raise ValueError("none of the requested metrics is in the subgroup table")
    k = len(table)
    fig = _figure(3.6 * len(metrics) + 2.4, max(2.5, 0.28 * k + 1.2))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0])
    ypos = np.arange(k)[::-1]
    ylabels = [
        f"{r.column}: {r.level} (n={r.n}{', small' if r.small else ''})"
        if r.column != "all"
        else f"all (n={r.n})"
        for r in table.itertuples(index=False)
    ]
    for ax, metric in zip(axes, metrics, strict=True):
        overall = table.loc[table["column"] == "all", metric]
        if len(overall) and np.isfinite(overall.iloc[0]):
            ax.axvline(overall.iloc[0], ls="--", color="grey", lw=1)
        for y0, row in zip(ypos, table.itertuples(index=False), strict=True):
            v = getattr(row, metric)
            lo = getattr(row, f"{metric}_ci_low", np.nan)
            hi = getattr(row, f"{metric}_ci_high", np.nan)
            if not np.isfinite(v):
                ax.text(0.5, y0, "n/a", ha="center", va="center", fontsize=7, color="grey")
                continue
            if row.small:
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.plot([lo, hi], [y0, y0], color="grey", lw=1)
                ax.plot(v, y0, "o", mfc="none", mec="grey")
            else:
                colour = "black" if row.column == "all" else "tab:blue"
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.plot([lo, hi], [y0, y0], color=colour, lw=1.5)
                ax.plot(v, y0, "s" if row.column == "all" else "o", color=colour)
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, ylabels, fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig
