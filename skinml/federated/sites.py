"""Hospitals as clients: one site's rows, its own lesion-grouped split, and the checks that
must pass at every site before round 1.

A site's split is computed from that site's rows alone (``assign_splits`` with the run's
split settings), so a hospital running its own node gets the same split as the simulation
computes for it, and no lesion is in two splits of a site. The pooled split manifest of a
simulation is the union of the sites' splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from skinml.data.manifest import Manifest
from skinml.errors import ConfigError, DataError, ManyErrors

SPLITS = ("train", "val", "test")


def site_names(manifest: Manifest, column: str = "site") -> list[str]:
    """The sites of a manifest, sorted (simulation client ``i`` is the ``i``-th).

    Raises:
        DataError: the column is absent or empty.
    """
    frame = manifest.frame
    if column not in frame.columns or frame[column].isna().all():
        raise DataError(
            f"the manifest has no {column!r} values, so it cannot be divided into hospitals",
            file=manifest.name,
            column=column,
            fix="fill the site column (one value per hospital), or set "
            "federation.site_column to the column that names the hospital",
        )
    missing = int(frame[column].isna().sum())
    if missing:
        rows = (np.flatnonzero(frame[column].isna().to_numpy()) + 2)[:5].tolist()
        raise DataError(
            f"{missing} rows have no {column!r} value (e.g. rows {rows})",
            file=manifest.name,
            column=column,
            fix="give every row its hospital, or remove those rows",
        )
    return sorted(map(str, frame[column].unique()))


def site_rows(manifest: Manifest, site: str, column: str = "site") -> Manifest:
    """The rows of one site (all rows when the manifest has no site column: a hospital's own)."""
    if column not in manifest.frame.columns or manifest.frame[column].isna().all():
        return manifest
    rows = manifest.subset(manifest.frame[column].astype(str) == str(site))
    if len(rows) == 0:
        raise DataError(
            f"no rows of site {site!r}",
            file=manifest.name,
            column=column,
            expected=f"one of {site_names(manifest, column)}",
            fix="name a site that the manifest has (federation.sites or the node's site)",
        )
    return rows


def split_site(manifest: Manifest, split_cfg: Any, seed: int) -> Manifest:
    """One site's rows with its own grouped split (the run's strategy and fractions)."""
    from skinml.data.splits import assign_splits

    split_seed = split_cfg.get("seed") if hasattr(split_cfg, "get") else None
    return assign_splits(
        manifest,
        strategy=split_cfg.strategy,
        val_fraction=split_cfg.val_fraction,
        test_fraction=split_cfg.test_fraction,
        seed=seed if split_seed is None else int(split_seed),
    )


@dataclass(frozen=True)
class SiteCounts:
    """Images per split and class at one site: all a hospital tells the server before round 1."""

    site: str
    counts: dict[str, dict[str, int]]  # split -> class -> images

    @classmethod
    def of(cls, site: str, manifest: Manifest, classes: list[str]) -> SiteCounts:
        frame = manifest.frame
        return cls(
            site,
            {
                s: {c: int(((frame["split"] == s) & (frame["label"] == c)).sum()) for c in classes}
                for s in SPLITS
            },
        )

    @property
    def total(self) -> int:
        return sum(sum(v.values()) for v in self.counts.values())


def site_problems(
    counts: SiteCounts, *, min_images: int, missing_classes: str
) -> tuple[list[str], list[str]]:
    """What stops a site (errors) and what is only said (warnings), in words.

    Returns:
        ``(errors, warnings)``; each names the site and the figure.
    """
    errors: list[str] = []
    warnings: list[str] = []
    if counts.total < min_images:
        errors.append(
            f"site {counts.site!r} has {counts.total} images; at least {min_images} are needed "
            "(federation.checks.min_images)"
        )
    for s in SPLITS:
        if sum(counts.counts[s].values()) == 0:
            errors.append(f"site {counts.site!r} has no {s} images after its lesion-grouped split")
    absent = [c for c, n in counts.counts["train"].items() if n == 0]
    if absent:
        text = f"site {counts.site!r} has no training images of {absent}"
        (errors if missing_classes == "error" else warnings).append(text)
    return errors, warnings


def check_sites(all_counts: list[SiteCounts], checks: Any) -> list[str]:
    """Refuse the federation before round 1 when a site cannot take part; return warnings.

    Every site's problems are listed at once, so a federation of many hospitals is not
    fixed one failed start at a time.

    Raises:
        ConfigError: one problem; ManyErrors: several.
    """
    mode = str(checks.missing_classes)
    if mode not in ("error", "warn"):
        raise ConfigError(
            f"federation.checks.missing_classes={mode!r} is not allowed",
            expected="'error' or 'warn'",
        )
    errors, warnings = [], []
    for counts in all_counts:
        e, w = site_problems(counts, min_images=int(checks.min_images), missing_classes=mode)
        errors += e
        warnings += w
    fix = (
        "leave the site out (federation.sites=[...]), merge it with a neighbouring hospital, "
        "lower federation.checks.min_images, or allow absent classes with "
        "federation.checks.missing_classes=warn"
    )
    if len(errors) == 1:
        raise ConfigError(errors[0] + " before round 1", fix=fix)
    if errors:
        raise ManyErrors(
            f"{len(errors)} problems at the sites before round 1",
            [ConfigError(e) for e in errors],
            fix=fix,
        )
    return warnings


def pooled_split(
    manifest: Manifest,
    sites: list[str],
    classes: list[str],
    split_cfg: Any,
    seed: int,
    column: str = "site",
) -> tuple[Manifest, list[SiteCounts]]:
    """Every site's own split, put together (the simulation's ``split_manifest.csv``)."""
    parts, counts = [], []
    for site in sites:
        split = split_site(site_rows(manifest, site, column), split_cfg, seed)
        parts.append(split.frame)
        counts.append(SiteCounts.of(site, split, classes))
    frame = pd.concat(parts, ignore_index=True)
    return Manifest(frame, manifest.root, manifest.name, excluded=manifest.excluded), counts
