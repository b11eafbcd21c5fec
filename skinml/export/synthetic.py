"""Untrained (random-init) bundles and simulated image sets for tests and benchmarks.

Throughput, memory and export correctness do not depend on what a network has
learned, so these let us measure and test them without a training run. Every
artefact is labelled simulated/untrained in its metadata so it can never pass
for a real model.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from skinml.modelfile.metadata import (
    Calibration,
    MetricWithCI,
    ModelMetadata,
    OperatingThreshold,
    Provenance,
)
from skinml.training.bundle import ModelBundle


def write_simulated_images(
    root: str | PathLike[str],
    classes: Sequence[str] = ("nv", "mel", "bkl"),
    *,
    per_class: dict[str, int] | None = None,
    size: tuple[int, int] = (48, 40),
    seed: int = 0,
    with_metadata: bool = False,
) -> Path:
    """Write simulated coloured-blob PNGs and ``manifest_simulated.csv`` (with a split column).

    Each class gets a different blob colour so a model could in principle learn it. With
    ``with_metadata``, rows also get simulated ``age``, ``sex`` and ``localization`` cells
    (about one in eight of each left empty, as in real registries).

    Returns:
        The manifest CSV path (image paths relative to it).
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_class = per_class or {"train": 6, "val": 6, "test": 2}
    rows = []
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for ci, label in enumerate(classes):
        colour = np.array([200 - 60 * ci, 120 + 40 * ci, 80 + 50 * (ci % 2)], dtype=np.float64)
        for split, n in per_class.items():
            for i in range(n):
                cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
                r = rng.uniform(0.15, 0.35) * min(w, h)
                mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
                img = rng.normal(180, 20, size=(h, w, 3))
                img[mask] = colour + rng.normal(0, 15, size=(int(mask.sum()), 3))
                name = f"images/sim_{label}_{split}_{i:03d}.png"
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(root / name)
                row = {
                    "image": name,
                    "label": label,
                    "split": split,
                    "lesion_id": f"L_{label}_{split}_{i}",
                    "site": "simulated",
                }
                if with_metadata:
                    row.update(simulated_metadata(rng))
                rows.append(row)
    manifest = root / "manifest_simulated.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


SIMULATED_SITES = ("back", "face", "lower extremity", "trunk", "upper extremity")


def simulated_metadata(rng: np.random.Generator) -> dict[str, object]:
    """One row of simulated age/sex/localization cells (empty = unknown, 1 in 8 each)."""

    def maybe(value: object) -> object:
        return "" if rng.random() < 0.125 else value

    return {
        "age": maybe(int(rng.integers(5, 95))),
        "sex": maybe(str(rng.choice(["male", "female"]))),
        "localization": maybe(str(rng.choice(SIMULATED_SITES))),
    }


def random_init_bundle(
    split_manifest: str | PathLike[str],
    *,
    architecture: str = "test_resnet",
    classes: Sequence[str] = ("nv", "mel", "bkl"),
    malignant: Sequence[str] = ("mel",),
    input_size: tuple[int, int] = (32, 32),
    resize: str = "resize",
    temperature: float = 1.5,
    malignant_threshold: float = 0.3,
    seed: int = 0,
    metadata_columns: Sequence[str] = (),
    tta_views: Sequence[str] = (),
) -> ModelBundle:
    """A bundle around an untrained timm network (``pretrained=False``, seeded weights).

    The metadata says ``untrained (random init)`` in ``intended_use``/``limitations``
    and ``extra['simulated']``; metrics are placeholders marked as such. With
    ``metadata_columns`` the network is a metadata-fusion model whose encoding is fitted
    on the manifest's training rows. ``tta_views`` are recorded as if the calibration had
    been fitted on those views' averaged logits, so export builds them into the graph.
    """
    import torch

    from skinml import __version__
    from skinml.models.factory import create_classifier, preprocessing_for
    from skinml.tracking.provenance import utc_now

    extra: dict[str, object] = {"simulated": True, "untrained": True}
    fusion: dict[str, int] = {}
    if metadata_columns:
        encoding = _fit_on_train(split_manifest, list(metadata_columns))
        extra["metadata_input"] = encoding.to_dict()
        fusion = {"metadata_features": encoding.n_features}
    torch.manual_seed(seed)
    model = create_classifier(architecture, num_classes=len(classes), **fusion).eval()
    prep = preprocessing_for(
        model,
        input_size,
        resize=resize,
        crop_pct=0.875 if resize == "resize_shorter_center_crop" else 1.0,
    )
    meta = ModelMetadata(
        task="image_classification",
        classes=tuple(classes),
        malignant=tuple(malignant),
        provenance=Provenance(
            skinml_version=__version__,
            created_utc=utc_now(),
            dataset="simulated",
            data_fingerprint="simulated",
        ),
        inputs={},
        outputs={},
        preprocessing=prep,
        calibration=Calibration(
            method="temperature", temperature=temperature, tta_views=tuple(tta_views)
        ),
        thresholds=(
            OperatingThreshold(
                "malignant", malignant_threshold, "fixed placeholder (untrained model)"
            ),
        ),
        metrics={"accuracy": MetricWithCI(value=0.0, split="none (untrained placeholder)")},
        intended_use="Untrained (random init) network for software tests and benchmarks only.",
        limitations="Not a diagnostic model: weights are random; outputs are meaningless.",
        extra=extra,
    )
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    kwargs = {"num_classes": len(classes), **(model.fusion_kwargs() if fusion else {})}
    return ModelBundle(architecture, kwargs, state, meta, str(Path(split_manifest)))


def _fit_on_train(split_manifest: str | PathLike[str], columns: list[str]):
    from skinml.data.manifest import read_manifest
    from skinml.modelfile.metadata_input import fit_metadata_encoding

    frame = read_manifest(split_manifest).frame
    train = frame[frame["split"] == "train"]
    values = {
        c: train[c].astype(object).where(train[c].notna(), None).tolist()
        for c in columns
        if c in train.columns
    }
    return fit_metadata_encoding(columns, values, available=list(frame.columns))
