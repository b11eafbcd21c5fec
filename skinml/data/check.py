"""Decode every image of a dataset and list *all* bad files, not just the first.

A training run that dies at epoch 3 on one truncated JPEG wastes hours; a
report that names every unreadable file (with the reason from
``skinml.imaging.read.read_image``) before training lets the data manager fix
them in one go.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from skinml.data.manifest import Manifest
from skinml.errors import ImageReadError, ManyErrors
from skinml.imaging.read import DEFAULT_MAX_PIXELS, read_image


@dataclass(frozen=True)
class ImageCheckReport:
    """Outcome of decoding every image of a manifest.

    Attributes:
        name: the dataset checked.
        n_checked: images attempted.
        bad: one row per unreadable image: ``row`` (manifest CSV row), ``image``, ``reason``.
        sizes: one row per readable image: ``image``, ``width``, ``height`` (upright).
    """

    name: str
    n_checked: int
    bad: pd.DataFrame
    sizes: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.bad.empty

    def summary(self) -> str:
        """One line when all is well; otherwise one line per bad file."""
        sizes = ""
        if len(self.sizes):
            w, h = self.sizes["width"], self.sizes["height"]
            sizes = f"; sizes {w.min()}–{w.max()} × {h.min()}–{h.max()} px"
        if self.ok:
            return f"all {self.n_checked:,} images of {self.name!r} decode{sizes}"
        lines = [f"{len(self.bad):,} of {self.n_checked:,} images of {self.name!r} cannot be read:"]
        lines += [f"  row {r.row}: {r.image}: {r.reason}" for r in self.bad.itertuples()]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise ``ManyErrors`` naming every bad file."""
        if not self.ok:
            errors = [
                ImageReadError(str(r.reason), file=r.image, row=int(r.row))
                for r in self.bad.itertuples()
            ]
            raise ManyErrors(
                f"{len(errors)} images of {self.name!r} cannot be read",
                errors,  # type: ignore[arg-type]
                fix="re-export or remove the named files, or exclude them from the manifest",
            )


def check_images(
    manifest: Manifest,
    progress: bool = True,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
    workers: int = 1,
) -> ImageCheckReport:
    """Read every image of the manifest and collect every failure.

    Args:
        manifest: the dataset.
        progress: show a progress bar.
        max_pixels: decompression-bomb limit passed to ``read_image``.
        min_side: smallest acceptable shorter side in pixels.
        workers: threads used for decoding (Pillow releases the GIL while decoding).

    Returns:
        An :class:`ImageCheckReport`; it never raises for bad images.
    """
    jobs = list(enumerate(zip(manifest.frame["image"], manifest.paths(), strict=True)))

    def one(job: tuple[int, tuple[str, Path]]) -> tuple[int, str, tuple[int, int] | str]:
        i, (rel, path) = job
        try:
            img = read_image(path, max_pixels=max_pixels, min_side=min_side)
        except ImageReadError as exc:
            return i, rel, exc.problem
        return i, rel, img.size

    results: Iterator[tuple[int, str, tuple[int, int] | str]]
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    results = pool.map(one, jobs) if pool is not None else map(one, jobs)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(jobs), desc=f"decoding {manifest.name}", unit="img")
    bad, sizes = [], []
    try:
        for i, rel, outcome in results:
            if isinstance(outcome, str):
                bad.append({"row": i + 2, "image": rel, "reason": outcome})
            else:
                sizes.append({"image": rel, "width": outcome[0], "height": outcome[1]})
    finally:
        if pool is not None:
            pool.shutdown()
    return ImageCheckReport(
        name=manifest.name,
        n_checked=len(jobs),
        bad=pd.DataFrame(bad, columns=["row", "image", "reason"]),
        sizes=pd.DataFrame(sizes, columns=["image", "width", "height"]),
    )
