"""The figures carry the numbers they claim (labels, legends) and render to PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from skinml.evaluation import (
    TemperatureScaler,
    evaluate,
    plot_confusion_matrix,
    plot_reliability,
    plot_roc_curves,
    plot_subgroups,
    subgroup_table,
)


def _sample(rng, n=300):
    y = rng.integers(0, 3, n)
    z = 3 * (rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[y])
    return y, z, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def _png(fig: Figure, path) -> int:
    fig.savefig(path)
    return path.stat().st_size


def test_confusion_matrix_plot(rng, tmp_path):
    y, _, probs = _sample(rng)
    ev = evaluate(y, probs, ["mel", "nv", "bkl"], ["mel"], n_bootstrap=0)
    fig = plot_confusion_matrix(ev.confusion, ["mel", "nv", "bkl"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 9 and f"({ev.confusion[0, 0]})" in texts[0]
    assert "arg-max" in fig.axes[0].get_title()  # not the malignancy threshold's flags
    assert "arg-max" in fig.axes[0].get_xlabel()
    counts = plot_confusion_matrix(ev.confusion, ["mel", "nv", "bkl"], normalize=False)
    assert counts.axes[0].texts[0].get_text() == str(ev.confusion[0, 0])
    assert _png(fig, tmp_path / "cm.png") > 1000


def test_roc_plot_lists_every_class_and_operating_point(rng, tmp_path):
    y, _, probs = _sample(rng)
    y[y == 2] = 1  # class "bkl" has no case: listed as not defined
    fig = plot_roc_curves(y, probs, ["mel", "nv", "bkl"], malignant=["mel"], threshold=0.5)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("mel (AUC") and "bkl: not defined" in labels[2]
    assert any(lab.startswith("malignant vs benign") for lab in labels)
    assert any("operating point" in lab for lab in labels)
    assert _png(fig, tmp_path / "roc.png") > 1000


def test_reliability_plot_before_and_after(rng, tmp_path):
    y, z, probs = _sample(rng)
    after = TemperatureScaler().fit(z, y).predict_proba(z)
    fig = plot_reliability(y, probs, after)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("uncalibrated (ECE") for lab in labels)
    assert any(lab.startswith("temperature-scaled (ECE") for lab in labels)
    assert len(plot_reliability(y, probs).axes[0].get_legend().get_texts()) == 2
    assert _png(fig, tmp_path / "rel.png") > 1000


def test_subgroup_plot_has_a_row_per_level(rng, tmp_path):
    y, _, probs = _sample(rng)
    meta = pd.DataFrame({"site": rng.choice(["a", "b", "c"], len(y), p=[0.5, 0.45, 0.05])})
    table = subgroup_table(y, probs, ["mel", "nv", "bkl"], ["mel"], meta, n_bootstrap=30)
    fig = plot_subgroups(table)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(ticks) == len(table) and ticks[0] == "all (n=300)"
    assert any("small" in t for t in ticks)
    assert len(fig.axes) == 2
    assert _png(fig, tmp_path / "sub.png") > 1000
