"""Train/val/test splits without leakage: grouped by lesion or patient, stratified by label.

Several images of one lesion (or one patient) in both the training and the
test split make test metrics optimistic: the model recognises the lesion, not
the disease. DermaMNIST split HAM10000 by image and so puts 1,006 lesions in
more than one split. skinml's default is a grouped, stratified split
(scikit-learn's ``StratifiedGroupKFold``); the published split stays available
as ``strategy="predefined"`` for comparison with the literature.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from skinml.data.manifest import SPLITS, Manifest
from skinml.errors import ConfigError, DataError

Strategy = Literal["lesion", "patient", "predefined"]
STRATEGIES: tuple[str, ...] = ("lesion", "patient", "predefined")

#: Folds used to build splits; fractions are rounded to multiples of 1/_N_FOLDS.
_N_FOLDS = 20


@dataclass(frozen=True)
class LeakageReport:
    """Groups (lesions or patients) whose images fall in more than one split.

    Attributes:
        by: the grouping column.
        n_groups: groups with at least one image in a split.
        n_leaking: groups with images in two or more splits.
        n_images_leaking: images that belong to leaking groups.
        pairs: ``{"train+test": n, ...}`` leaking groups per combination of splits.
        groups: one row per leaking group: group id, its splits, its image count.
    """

    by: str
    n_groups: int
    n_leaking: int
    n_images_leaking: int
    pairs: dict[str, int]
    groups: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.n_leaking == 0

    def summary(self) -> str:
        if self.ok:
            return f"no leakage: each of {self.n_groups:,} {self.by} values is in one split"
        pairs = ", ".join(f"{k} {v:,}" for k, v in self.pairs.items())
        return (
            f"{self.n_leaking:,} of {self.n_groups:,} {self.by} values span more than one "
            f"split ({self.n_images_leaking:,} images; {pairs})"
        )


def leakage_report(manifest: Manifest, by: str = "lesion_id") -> LeakageReport:
    """Count groups whose images are spread over more than one split.

    Rows without a split are ignored.

    Args:
        manifest: a manifest with a ``split`` column.
        by: the grouping column (``lesion_id`` or ``patient_id``).

    Raises:
        DataError: if the column does not exist.
    """
    df = manifest.frame
    if by not in df.columns:
        raise DataError(
            f"no column {by!r} to check leakage by",
            file=manifest.name,
            expected=f"one of {list(df.columns)}",
        )
    assigned = df[df["split"].notna()]
    per_group = assigned.groupby(by, sort=True)["split"].agg(lambda s: tuple(sorted(set(s))))
    sizes = assigned.groupby(by, sort=True).size()
    leaking = per_group[per_group.map(len) > 1]
    groups = pd.DataFrame(
        {
            by: leaking.index.astype(str),
            "splits": ["+".join(_split_order(s)) for s in leaking],
            "n_images": sizes.loc[leaking.index].to_numpy(),
        }
    )
    pairs = {str(k): int(v) for k, v in groups["splits"].value_counts().sort_index().items()}
    return LeakageReport(
        by=by,
        n_groups=len(per_group),
        n_leaking=len(leaking),
        n_images_leaking=int(groups["n_images"].sum()) if len(groups) else 0,
        pairs=pairs,
        groups=groups.reset_index(drop=True),
    )


def assign_splits(
    manifest: Manifest,
    strategy: Strategy = "lesion",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Manifest:
    """Return a copy of the manifest with its ``split`` column filled.

    ``lesion`` keeps every lesion in one split; ``patient`` keeps every patient
    *and* every lesion in one split (groups are the connected components of
    patients and lesions, so a lesion recorded under two patient ids cannot
    leak either). Both stratify by label. ``predefined`` keeps the split the
    loader read from the source (e.g. DermaMNIST's) and checks it is complete.

    Fractions are realised as whole folds of ``StratifiedGroupKFold`` (10 folds
    for the default 0.1/0.2; other fractions are rounded to multiples of 1/20);
    with very few groups the split sizes are approximate.

    Args:
        manifest: the dataset.
        strategy: ``"lesion"`` (default), ``"patient"`` or ``"predefined"``.
        val_fraction: share of groups for validation (0 allowed).
        test_fraction: share of groups for test (0 allowed).
        seed: random seed; the same seed gives the same split.

    Returns:
        A new :class:`Manifest` (same root, name and excluded rows).

    Raises:
        ConfigError: unknown strategy or fractions outside [0, 1).
        DataError: ``predefined`` on a manifest whose split is missing for some rows,
            or too few groups to split.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown split strategy {strategy!r}",
            expected=f"one of {STRATEGIES}",
            fix="use 'lesion' (default), 'patient', or 'predefined' for the source's own split",
        )
    df = manifest.frame.copy()
    if strategy == "predefined":
        _check_predefined(manifest)
        return Manifest(df, manifest.root, manifest.name, excluded=manifest.excluded)
    _check_fractions(val_fraction, test_fraction)
    groups = _groups(df, strategy)
    df["split"] = grouped_split_labels(
        df["label"].to_numpy(), groups, val_fraction, test_fraction, seed, source=manifest.name
    )
    return Manifest(df, manifest.root, manifest.name, excluded=manifest.excluded)


def grouped_split_labels(
    labels: np.ndarray,
    groups: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    *,
    source: str = "manifest",
) -> np.ndarray:
    """Assign ``train``/``val``/``test`` per row so that no group spans two splits.

    ``StratifiedGroupKFold`` deals the groups into k folds (k <= 20, see
    ``_fold_count``) with similar class proportions; the first folds become
    test, the next val, the rest train.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    largest_class = int(np.unique(labels, return_counts=True)[1].max()) if len(labels) else 0
    # sklearn refuses more folds than the largest class has members (a ValueError
    # with no file in it); fewer folds only make the fractions coarser.
    n_folds = min(_fold_count(val_fraction, test_fraction), n_groups, largest_class)
    n_test = round(test_fraction * n_folds)
    n_val = round(val_fraction * n_folds)
    if test_fraction > 0:
        n_test = max(n_test, 1)
    if val_fraction > 0:
        n_val = max(n_val, 1)
    if n_folds < 2 or n_test + n_val >= n_folds:
        raise DataError(
            f"cannot split dataset {source!r}: {n_groups} groups ({len(labels)} rows, at most "
            f"{largest_class} of one class) into train/val/test with val_fraction="
            f"{val_fraction} and test_fraction={test_fraction}",
            expected="enough distinct lesions/patients that every split gets at least one",
            fix="use smaller fractions or more data",
        )
    cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.empty(len(labels), dtype=int)
    x = np.zeros((len(labels), 1))
    # Classes with fewer members than folds trigger a warning inside sklearn; the
    # split is still grouped, only less evenly stratified for those classes.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for k, (_, test_idx) in enumerate(cv.split(x, labels, groups)):
            fold[test_idx] = k
    out = np.full(len(labels), "train", dtype=object)
    out[fold < n_test] = "test"
    out[(fold >= n_test) & (fold < n_test + n_val)] = "val"
    return out


def _fold_count(val_fraction: float, test_fraction: float) -> int:
    """The fewest folds (2..20) in which both fractions are whole numbers of folds.

    ``StratifiedGroupKFold``'s cost grows with the number of folds (HAM10000:
    about 5 s for 10 folds, 13 s for 20), so 0.1/0.2 uses 10 folds and only
    fractions such as 0.15 need 20; others are rounded to 1/20.
    """
    for k in range(2, _N_FOLDS + 1):
        if all(abs(f * k - round(f * k)) < 1e-6 for f in (val_fraction, test_fraction)):
            return k
    return _N_FOLDS


def _groups(df: pd.DataFrame, strategy: str) -> np.ndarray:
    if strategy == "lesion":
        return df["lesion_id"].astype(str).to_numpy()
    # Patients and lesions as one graph: rows sharing a patient or a lesion stay together.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    lesion_codes, _ = pd.factorize(df["lesion_id"].astype(str))
    patient_codes, patients = pd.factorize(df["patient_id"].astype(str))
    n_p = len(patients)
    n_nodes = n_p + lesion_codes.max() + 1
    rows = patient_codes
    cols = n_p + lesion_codes
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes))
    _, component = connected_components(graph, directed=False)
    return component[patient_codes]


def _check_predefined(manifest: Manifest) -> None:
    df = manifest.frame
    missing = df.index[df["split"].isna()]
    if len(missing) == len(df):
        raise DataError(
            "strategy 'predefined' needs a split from the source, but no row has one",
            file=manifest.name,
            column="split",
            fix="use strategy='lesion' (grouped), or a loader that reads the published split",
        )
    if len(missing):
        shown = ", ".join(str(df.at[i, "image"]) for i in missing[:10])
        raise DataError(
            f"strategy 'predefined' but {len(missing)} rows have no split (e.g. {shown})",
            file=manifest.name,
            column="split",
            expected=f"one of {SPLITS} on every row",
            fix="fill the split column for these rows, or use strategy='lesion'",
        )


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}={value} is outside [0, 1)", fix=f"set {name} to e.g. 0.1")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no "
            "training data",
            fix="keep their sum below 1 (e.g. 0.1 and 0.2)",
        )


def _split_order(splits: tuple[str, ...]) -> list[str]:
    order = {s: i for i, s in enumerate(SPLITS)}
    return sorted(splits, key=lambda s: order.get(s, len(order)))
