"""From a data config to split, validated, cached datasets ready for the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skinml.data.manifest import Manifest
from skinml.errors import ConfigError
from skinml.vocabulary import LabelSpace


@dataclass
class PreparedData:
    """The split manifest and what training needs to know about it."""

    manifest: Manifest
    classes: list[str]
    malignant: list[str]
    fingerprint: str
    split_manifest_path: Path


def as_manifest(obj: Any) -> Manifest:
    """Accept a Manifest, or a loader result carrying one (``.manifest``)."""
    if isinstance(obj, Manifest):
        return obj
    inner = getattr(obj, "manifest", None)
    if isinstance(inner, Manifest):
        return inner
    raise ConfigError(
        f"data.source returned {type(obj).__name__}, not a Manifest",
        column="data.source._target_",
        fix="point data.source at a loader that returns skinml.data.manifest.Manifest",
    )


def labels_as_classes(manifest: Manifest, classes: list[str]) -> Manifest:
    """The manifest with its labels written as the configured classes (synonyms mapped).

    A class that never occurs is allowed here (the caller decides: a pooled run needs every
    class, one federated hospital rarely sees every diagnosis).

    Raises:
        ConfigError: a label that fits none of the classes.
    """
    space = LabelSpace(classes, name="data.classes")
    found, unknown = space.mapping(manifest.frame["label"].unique())
    if unknown:
        raise ConfigError(
            f"the data has classes {sorted(map(str, unknown))} that data.classes="
            f"{list(classes)} does not list",
            file=manifest.name,
            column="label",
            expected=space.expected(),
            fix="add them to data.classes (the model's output order) or filter the manifest",
        )
    if all(k == v for k, v in found.items()):
        return manifest
    frame = manifest.frame.assign(label=manifest.frame["label"].map(found))
    return Manifest(frame, manifest.root, manifest.name, excluded=manifest.excluded)


def check_classes(
    manifest: Manifest, classes: list[str] | None, malignant: list[str]
) -> tuple[Manifest, list[str], list[str]]:
    """Put the data's labels in the configured classes; returns (manifest, class order, malignant).

    Labels and ``data.malignant`` go through the diagnosis vocabulary, so a
    manifest that writes "Melanoma" trains the configured class ``mel`` (or
    ``melanoma`` for ISIC 2017); a label that fits no class stops the run.
    """
    if classes:
        manifest = labels_as_classes(manifest, classes)
    present = manifest.classes
    if not classes:
        classes = present
    missing = sorted(set(classes) - set(present))
    if missing:
        raise ConfigError(
            f"data.classes lists {missing}, which never occur in the data",
            column="data.classes",
            fix="remove them, or check that the right dataset is configured",
        )
    named, bad_malignant = LabelSpace(classes, name="data.classes").mapping(malignant)
    if bad_malignant:
        raise ConfigError(
            f"data.malignant names {bad_malignant}, which are not classes {list(classes)}",
            column="data.malignant",
        )
    return manifest, list(classes), [named[m] for m in malignant]


def prepare_data(data_cfg: Any, *, seed: int, run_dir: Path, write: bool = True) -> PreparedData:
    """Load the dataset, check classes, assign leakage-free splits, write the split manifest.

    ``write=False`` (DDP ranks other than 0) computes the same split without writing.
    """
    from hydra.utils import instantiate

    from skinml.data.fingerprint import dataset_fingerprint
    from skinml.data.manifest import write_manifest
    from skinml.data.splits import assign_splits

    manifest = as_manifest(instantiate(data_cfg.source))
    manifest, classes, malignant = check_classes(
        manifest, list(data_cfg.classes or []), list(data_cfg.malignant)
    )
    split = data_cfg.split
    manifest = assign_splits(
        manifest,
        strategy=split.strategy,
        val_fraction=split.val_fraction,
        test_fraction=split.test_fraction,
        seed=seed if split.get("seed") is None else split.seed,
    )
    for name in ("train", "val", "test"):
        if (manifest.frame["split"] == name).sum() == 0:
            raise ConfigError(
                f"the {name!r} split is empty",
                column="data.split",
                fix="use a larger dataset or larger val/test fractions",
            )
    path = Path(run_dir) / "split_manifest.csv"
    if write:
        write_manifest(manifest, path)
    return PreparedData(
        manifest=manifest,
        classes=classes,
        malignant=malignant,
        fingerprint=dataset_fingerprint(manifest),
        split_manifest_path=path,
    )


def split_targets(manifest: Manifest, classes: list[str]) -> dict[str, np.ndarray]:
    """Label indices per split."""
    from skinml.data.torch_dataset import encode_labels

    index = {c: i for i, c in enumerate(classes)}
    return {
        s: encode_labels(manifest.split(s).frame["label"].tolist(), index, source=manifest.name)
        for s in ("train", "val", "test")
    }


@dataclass
class MetadataFeatures:
    """The fitted metadata encoding and the encoded rows of each split (in manifest order)."""

    encoding: Any  # skinml.modelfile.metadata_input.MetadataEncoding
    splits: dict[str, np.ndarray]
    n_unknown: dict[str, int]


def metadata_columns(data_cfg: Any) -> list[str]:
    """The configured metadata columns (``data.metadata_columns``; empty or null = off)."""
    columns = data_cfg.get("metadata_columns") if hasattr(data_cfg, "get") else None
    if columns is None:
        return []
    if isinstance(columns, str):
        raise ConfigError(
            f"data.metadata_columns is the string {columns!r}, not a list",
            column="data.metadata_columns",
            fix="write a list, e.g. data.metadata_columns=[age,sex,localization]",
        )
    return [str(c) for c in columns]


def encode_metadata(manifest: Manifest, columns: list[str]) -> MetadataFeatures:
    """Fit the metadata encoding on the training split and encode every split.

    Every bad cell of every split is reported at once (column, manifest row and image);
    values a column never had in training follow the encoding's unknown rule.

    Raises:
        ConfigError: a configured column is not in the manifest (its columns are listed).
        ManyErrors: cells that are not valid (age ``abc`` or 150, an unrecognised sex).
    """
    from skinml.errors import ManyErrors
    from skinml.modelfile.metadata_input import fit_metadata_encoding

    frame = manifest.frame
    present = [c for c in columns if c in frame.columns]
    cells = {c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in present}
    train = (frame["split"] == "train").to_numpy()
    encoding = fit_metadata_encoding(
        columns,
        {c: [v for v, t in zip(cells[c], train, strict=True) if t] for c in present},
        source=manifest.name,
        available=list(frame.columns),
    )
    rows = [dict(zip(present, values, strict=True)) for values in zip(*cells.values(), strict=True)]
    encoded = encoding.encode_rows(rows)
    if encoded.errors:
        images = frame["image"].tolist()
        problems = [
            exc.located(file=manifest.name, row=f"{i + 2} (image {images[i]})")
            for i, exc in encoded.errors
        ]
        raise ManyErrors(
            f"{len(problems)} metadata cells of {manifest.name!r} cannot be encoded",
            problems,
            fix="correct these cells (leave a cell empty when the value is not known), or "
            "remove the column from data.metadata_columns",
        )
    n_unknown = {
        c: int(n) for c, n in zip(encoding.column_names, encoded.unknown.sum(0), strict=True)
    }
    split = frame["split"].to_numpy()
    return MetadataFeatures(
        encoding=encoding,
        splits={s: encoded.features[split == s] for s in ("train", "val", "test")},
        n_unknown=n_unknown,
    )
