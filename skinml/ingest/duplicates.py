"""Exact and near-duplicate images across hospitals, and the groups a split must respect.

The same lesion photo often reaches the centre twice: re-sent by a second
hospital, re-saved at another size, or forwarded by a referring GP. If the two
copies land in different splits, test metrics are inflated. Exact copies share
a SHA-256 (of the delivered file or of the normalised output); near copies
have perceptual hashes (64-bit pHash, :mod:`imagehash`) within a small Hamming
distance. Both are linked into a ``duplicate_group``. Because
``skinml.data.splits`` groups by ``lesion_id`` (or by patients joined with
lesions), rows linked through a duplicate group
also get one ``lesion_id`` (:func:`merge_duplicate_lesions`; the delivered
pseudonym stays in ``lesion_id_delivered``), so its lesion and patient
strategies cannot separate copies. ``split_group`` (rows sharing a patient, a
lesion or a duplicate group) is the strictest grouping, for any other splitter.

Exact copies that arrive with *different* labels are a label conflict
(:func:`label_conflicts`): ingest keeps every copy out of the dataset until the
labels agree, because choosing one label would be a silent diagnosis.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_CHUNK = 1024


def near_pairs(hashes: Sequence[str], threshold: int) -> list[tuple[int, int, int]]:
    """All index pairs ``(i, j, distance)`` with ``i < j`` whose 64-bit hex hashes differ in
    at most ``threshold`` bits.

    Vectorised in blocks (``n**2 / 2`` comparisons, about a second for 20k images);
    beyond a few hundred thousand images a BK-tree or LSH index would be needed.
    """
    if len(hashes) < 2:
        return []
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    out: list[tuple[int, int, int]] = []
    for start in range(0, len(values), _CHUNK):
        block = values[start : start + _CHUNK]
        xor = block[:, None] ^ values[None, :]
        dist = np.bitwise_count(xor)
        rows, cols = np.nonzero(dist <= threshold)
        for r, c in zip(rows, cols, strict=True):
            i = start + int(r)
            if i < int(c):
                out.append((i, int(c), int(dist[r, c])))
    return out


def label_conflicts(
    keys: Sequence[Hashable], labels: Sequence[str | None]
) -> dict[Hashable, list[str]]:
    """Keys (image hashes) that occur with more than one label, with their sorted labels.

    Labels arrive here already through the shared diagnosis vocabulary, so
    ``"Melanoma"`` and ``"mel"`` are one label (``mel``); anything else that differs
    is a conflict, and guessing which label is right would resolve it silently.
    """
    seen: dict[Hashable, set[str]] = {}
    for key, label in zip(keys, labels, strict=True):
        seen.setdefault(key, set()).add("" if label is None else str(label))
    return {k: sorted(v) for k, v in seen.items() if len(v) > 1}


def _components(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    if not edges:
        return np.arange(n)
    a, b = np.array(edges).T
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _group_names(frame: pd.DataFrame, labels: np.ndarray, prefix: str) -> list[str]:
    """Name each component after its first member's file stem (deterministic, no identifiers)."""
    stems = frame["image"].map(lambda p: str(p).rsplit("/", 1)[-1].rsplit(".", 1)[0])
    first: dict[int, str] = {}
    for lab, _image, stem in sorted(
        zip(labels, frame["image"], stems, strict=True), key=lambda t: t[1]
    ):
        first.setdefault(int(lab), stem)
    return [f"{prefix}{first[int(lab)]}" for lab in labels]


def assign_duplicate_groups(frame: pd.DataFrame, *, threshold: int) -> pd.DataFrame:
    """Add ``duplicate_group`` (every row; singletons get their own) and ``duplicate_kind``.

    Args:
        frame: manifest rows with ``image``, ``sha256``, ``source_sha256`` and ``phash``.
        threshold: largest pHash Hamming distance counted as a near-duplicate.

    Returns:
        A copy with ``duplicate_kind`` = ``"exact"`` (shares a file hash with
        another row), ``"near"`` (only perceptually similar) or ``"none"``.
    """
    df = frame.reset_index(drop=True).copy()
    n = len(df)
    exact_edges: list[tuple[int, int]] = []
    for col in ("source_sha256", "sha256"):
        for _, idx in df.groupby(col).indices.items():
            exact_edges += [(int(idx[0]), int(j)) for j in idx[1:]]
    near_edges = [(i, j) for i, j, _ in near_pairs(list(df["phash"]), threshold)]
    labels = _components(n, exact_edges + near_edges)
    sizes = pd.Series(labels).map(pd.Series(labels).value_counts())
    in_exact = np.zeros(n, dtype=bool)
    for i, j in exact_edges:
        in_exact[i] = in_exact[j] = True
    df["duplicate_group"] = _group_names(df, labels, "dup-")
    df["duplicate_kind"] = np.where(
        in_exact, "exact", np.where(sizes.to_numpy() > 1, "near", "none")
    )
    return df


def assign_split_groups(
    frame: pd.DataFrame, columns: Sequence[str] = ("patient_id", "lesion_id", "duplicate_group")
) -> pd.Series:
    """Connected components of rows that share a value in any of ``columns``.

    Use the result as the ``groups`` of a grouped splitter so that no patient,
    lesion or duplicate image is in two splits.
    """
    df = frame.reset_index(drop=True)
    n = len(df)
    edges: list[tuple[int, int]] = []
    for col in columns:
        if col not in df.columns:
            continue
        for _, idx in df.groupby(col, dropna=True).indices.items():
            edges += [(int(idx[0]), int(j)) for j in idx[1:]]
    labels = _components(n, edges)
    return pd.Series(_group_names(df, labels, "grp-"), index=frame.index, name="split_group")


def merge_duplicate_lesions(frame: pd.DataFrame) -> pd.Series:
    """Lesion ids rewritten so that duplicate images share one (the existing splitter needs it).

    ``skinml.data.splits`` groups by ``lesion_id`` (and patients with lesions),
    not by duplicate group. Two copies of one photo show one lesion, so rows
    connected through a lesion id or a duplicate group get the smallest lesion
    id of their component; rows that are in no duplicate group keep theirs.
    """
    df = frame.reset_index(drop=True)
    components = assign_split_groups(df, columns=("lesion_id", "duplicate_group"))
    merged = df["lesion_id"].astype(str).groupby(components.to_numpy()).transform("min")
    return pd.Series(merged.to_numpy(), index=frame.index, name="lesion_id")
