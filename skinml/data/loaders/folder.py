"""A plain folder-per-class tree: ``root/<label>/<image>``.

The simplest layout a clinic can produce by dragging photos into folders.
Files that are not images by suffix, and images lying directly in ``root``
(no class folder), are not guessed at: they go to ``Manifest.excluded`` with
the reason, so the user sees what was left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.data.loaders._common import EXCLUDED_COLUMNS, IMAGE_SUFFIXES, make_manifest
from skinml.data.manifest import Manifest, conform_labels
from skinml.errors import DataError


class SkippedFilesWarning(UserWarning):
    """Files in a folder tree were not used (see ``Manifest.excluded``)."""


def load_image_folder(
    root: str | PathLike[str],
    *,
    site: str = "unknown",
    device: str = "unknown",
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
    name: str | None = None,
    classes: Sequence[str] | None = None,
) -> Manifest:
    """Turn ``root/<class>/**/<image>`` into a manifest; the class is the first folder.

    Folder names go through the diagnosis vocabulary: ``Melanoma/`` and ``mel/``
    are one class (``mel``), or the matching one of ``classes`` when given.

    Args:
        root: the tree's top folder.
        site: ``site`` for every row (a folder tree has no per-image site).
        device: ``device`` for every row.
        suffixes: file suffixes (lower case) read as images.
        name: dataset name (default: the folder's name).
        classes: fixed classes to map the folder names onto (None: canonical codes).

    Returns:
        One row per image, sorted by path; skipped files are in ``excluded``.

    Raises:
        DataError: the folder does not exist or holds no images in class folders.
        ManyErrors: with ``classes``, folders whose name fits none of them.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            "folder does not exist",
            file=root,
            fix="point at the folder whose sub-folders are the classes",
        )
    rows, skipped = [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root)
        if p.suffix.lower() not in suffixes:
            skipped.append((rel.as_posix(), f"not an image file by its suffix {p.suffix!r}"))
        elif len(rel.parts) < 2:
            skipped.append(
                (rel.as_posix(), "image directly in the root folder has no class folder")
            )
        else:
            rows.append({"image": rel.as_posix(), "label": rel.parts[0]})
    if not rows:
        raise DataError(
            "no images found in class sub-folders",
            file=root,
            expected=f"root/<class>/<image> with suffixes {list(suffixes)}",
            fix="put each class's images in a sub-folder named after the class",
        )
    frame = pd.DataFrame(rows)
    frame = conform_labels(frame, classes, source=root, rows=list(frame["image"]))
    frame["site"] = site
    frame["device"] = device
    excluded = pd.DataFrame(
        [
            {
                "file": str(root),
                "row": None,
                "image": path,
                "label": "",
                "reason": f"skipped: {why}",
            }
            for path, why in skipped
        ],
        columns=EXCLUDED_COLUMNS,
    )
    if len(excluded):
        warnings.warn(
            f"{len(excluded)} files under {str(root)!r} were not used (first: "
            f"{excluded['image'].iloc[0]!r}: {skipped[0][1]}); see Manifest.excluded",
            SkippedFilesWarning,
            stacklevel=2,
        )
    return make_manifest(frame, root, name or root.name, excluded)
