"""A torch ``Dataset`` over a manifest, with images decoded once and cached.

Each image is decoded, oriented, converted to RGB and resized to the model
input *once* (HAM10000 at 64 px is ~120 MB), so epochs cost only augmentation
and the GPU/CPU forward pass. All unreadable images are reported together
before training starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from skinml.data.manifest import Manifest
from skinml.errors import ConfigError, ImageReadError, ManyErrors
from skinml.imaging.preprocess import model_input, normalize
from skinml.modelfile.metadata import Preprocessing


def encode_labels(
    labels: Sequence[str], class_to_index: Mapping[str, int], *, source: str
) -> np.ndarray:
    """Map label strings to indices; unknown labels stop with the class and a fix."""
    unknown = sorted(set(labels) - set(class_to_index))
    if unknown:
        raise ConfigError(
            f"labels {unknown} occur in the data but are not in the configured classes "
            f"{list(class_to_index)}",
            file=source,
            column="label",
            fix="add them to data.classes, map them to a known class, or filter those rows",
        )
    return np.array([class_to_index[x] for x in labels], dtype=np.int64)


def load_resized_images(
    manifest: Manifest,
    prep: Preprocessing,
    *,
    threads: int = 4,
    progress: bool = True,
    rows: Sequence[int] | None = None,
    source: str | None = None,
) -> np.ndarray:
    """Decode and resize every image of a manifest into one uint8 array (N, H, W, 3).

    Args:
        manifest: the images to decode.
        prep: the model's preprocessing (size, resize policy).
        threads: decoding threads.
        progress: show a progress bar.
        rows: the CSV row of each image in the file the user can open (default:
            the row in ``manifest`` as a CSV, header = row 1).
        source: that file's name, shown with the row.

    Raises:
        ManyErrors: listing every image that could not be read (not just the first),
            each with its row.
    """
    from tqdm.auto import tqdm

    paths = manifest.paths()
    height, width = prep.input_size
    out = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    errors: list[ImageReadError] = []

    row_of = list(rows) if rows is not None else [i + 2 for i in range(len(paths))]

    def work(i: int) -> ImageReadError | None:
        try:
            out[i] = model_input(paths[i], prep)
        except ImageReadError as exc:
            row = f"{row_of[i]} of {source}" if source else row_of[i]
            return ImageReadError(exc.problem, file=exc.file, row=row)  # one shared fix
        return None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = pool.map(work, range(len(paths)))
        for res in tqdm(
            results,
            total=len(paths),
            desc=f"decoding {manifest.name}",
            unit="img",
            disable=not progress,
            leave=False,
        ):
            if res is not None:
                errors.append(res)
    if errors:
        raise ManyErrors(
            f"{len(errors)} of {len(paths)} images of {manifest.name!r} cannot be read",
            errors,
            fix="repair or remove these files (skinml-data verify lists them), then rerun",
        )
    return out


class ManifestImageDataset:
    """``(image tensor CHW float32, label index)`` pairs from cached, resized images.

    With patient metadata an item is ``((image, metadata vector), label)``: the model's
    two inputs travel together so the trainer's loops stay the same.

    Args:
        images: uint8 array (N, H, W, 3) from :func:`load_resized_images`.
        targets: label indices (N,).
        prep: the model's preprocessing (mean/std for normalisation).
        augment: an albumentations ``Compose`` applied to uint8 images, or None.
        metadata: encoded metadata (N, F) float32
            (:meth:`skinml.modelfile.metadata_input.MetadataEncoding.encode_rows`), or None.
        masking: training only: probability that one column of a sample is replaced by its
            "missing" encoding, so the model learns what to do when a clinician leaves a
            cell empty (a column never missing in training would leave its unknown
            features untrained).
        missing_blocks: per column, its slice of the vector and its missing features
            (:meth:`~skinml.modelfile.metadata_input.MetadataEncoding.column_slices`).
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        prep: Preprocessing,
        augment: Any | None = None,
        *,
        metadata: np.ndarray | None = None,
        masking: float = 0.0,
        missing_blocks: Sequence[tuple[slice, np.ndarray]] = (),
    ) -> None:
        if len(images) != len(targets):
            raise ValueError("images and targets differ in length")
        if metadata is not None and len(metadata) != len(targets):
            raise ValueError("metadata and targets differ in length")
        if not 0.0 <= masking < 1.0:
            raise ConfigError(
                f"metadata masking must be in [0, 1), got {masking}",
                column="data.metadata_masking",
            )
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.prep = prep
        self.augment = augment
        self.metadata = None if metadata is None else np.asarray(metadata, dtype=np.float32)
        self.masking = float(masking)
        self.missing_blocks = list(missing_blocks)
        self._rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.targets)

    def reseed(self, seed: int) -> None:
        """Reseed the augmentation and masking RNGs (per epoch and per worker) for exact replays."""
        if self.augment is not None:
            self.augment.set_random_seed(seed)
        self._rng = np.random.default_rng(seed)

    def metadata_row(self, index: int) -> np.ndarray:
        """The metadata vector of one sample, with columns masked at the configured rate."""
        assert self.metadata is not None
        row = self.metadata[index]
        if self.masking and self.missing_blocks:
            hit = self._rng.random(len(self.missing_blocks)) < self.masking
            if hit.any():
                row = row.copy()
                for (block, missing), h in zip(self.missing_blocks, hit, strict=True):
                    if h:
                        row[block] = missing
        return row

    def __getitem__(self, index: int):
        import torch

        img = self.images[index]
        if self.augment is not None:
            img = self.augment(image=img)["image"]
        x = torch.from_numpy(normalize(img, self.prep))
        if self.metadata is not None:
            x = (x, torch.from_numpy(self.metadata_row(index)))
        return x, int(self.targets[index])


def worker_init(worker_id: int) -> None:
    """Give each DataLoader worker its own augmentation seed derived from torch's."""
    import torch

    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed((torch.initial_seed() + worker_id) % 2**31)


def class_weights(targets: np.ndarray, n_classes: int, power: float = 1.0) -> np.ndarray:
    """Inverse-frequency class weights ``(N / (K * count)) ** power`` (power 0.5 = sqrt)."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    counts[counts == 0] = np.inf
    w = (len(targets) / (n_classes * counts)) ** power
    return w / w[np.isfinite(w)].mean()


def make_loader(
    dataset: Any,
    batch_size: int,
    *,
    sampler: Any | None = None,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool = False,
):
    """A ``DataLoader`` whose randomness (order, worker augmentation seeds) derives from ``seed``.

    Used by the trainer for every epoch, so that an epoch can be replayed exactly on resume.
    """
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=worker_init if num_workers else None,
    )
