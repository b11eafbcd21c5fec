"""Funnel-plot labels: no two overlap, none is clipped, flagged hospitals are named."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from skinml.qc.funnel import funnel_table
from skinml.qc.plots import funnel_grid, funnel_plot


def _crowded(seed: int = 0, n: int = 30):
    """Thirty hospitals of similar size (labels compete for space), two of them biased."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(180, 260, n)
    rate = np.full(n, 0.2)
    rate[[3, 17]] = [0.45, 0.02]
    events = rng.binomial(volume, rate)
    names = [f"County hospital {i:02d}" for i in range(n)]
    return funnel_table(names, events, volume, indicator="melanoma called")


def _labels(ax):
    return [t for t in ax.texts if t.get_text().startswith("County hospital")]


def _check(ax, result):
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    texts = _labels(ax)
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert texts, "no unit was labelled"
    for i, a in enumerate(boxes):
        assert inside.x0 - 0.5 <= a.x0 and a.x1 <= inside.x1 + 0.5, texts[i].get_text()
        assert inside.y0 - 0.5 <= a.y0 and a.y1 <= inside.y1 + 0.5, texts[i].get_text()
        for j in range(i + 1, len(boxes)):
            assert not a.overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(b.overlaps(legend) for b in boxes)
    flagged = set(result.table.loc[result.table["status"] != "within", "unit"])
    assert flagged and flagged <= {t.get_text() for t in texts}
    unlabelled = len(result.table) - len(texts)
    assert (unlabelled > 0) == ("not labelled" in ax.get_xlabel())


def test_single_funnel_labels_fit_without_overlap():
    result = _crowded()
    fig = funnel_plot(result)
    _check(fig.axes[0], result)


def test_grid_labels_are_placed_after_the_layout_settles():
    results = [_crowded(seed) for seed in range(3)]
    fig = funnel_grid(results, title="three indicators")
    for ax, result in zip(fig.axes, results, strict=False):
        _check(ax, result)
