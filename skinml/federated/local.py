"""What runs inside a hospital: its data, decoded once, and its local epochs.

Local training is skinml's own :class:`~skinml.training.trainer.Trainer` (class balance,
augmentation, the same loop as ``skinml-train``) started from the global weights for
``federation.local_epochs`` epochs; the weights after the last local epoch go back, as
FedAvg assumes (not the locally best epoch, which would select on one site's validation).
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from skinml.data.manifest import Manifest
from skinml.errors import ConfigError
from skinml.federated.sites import SiteCounts, site_rows, split_site
from skinml.training.data_setup import labels_as_classes

log = logging.getLogger(__name__)

#: decoded sites, kept while the process lives (a simulation actor serves many rounds)
_CACHE: dict[tuple, SiteData] = {}


@dataclass
class SiteData:
    """One hospital's split data, decoded, and what it may tell the server about it."""

    site: str
    manifest: Manifest
    classes: list[str]
    datasets: dict[str, Any]
    targets: dict[str, np.ndarray]
    clusters: dict[str, np.ndarray]  # anonymous cluster number per image (patient or lesion)
    cluster_unit: str
    counts: SiteCounts
    fingerprint: str


def check_federated_config(cfg: Any) -> None:
    """Refuse settings that have no meaning across hospitals, before anything is read."""
    from skinml.training.config_checks import check_train_config

    check_train_config(cfg)
    fed = cfg.federation
    problems = []
    if list(cfg.data.get("metadata_columns") or []):
        problems.append(
            ("data.metadata_columns", "metadata fusion is not federated yet", "set it to []")
        )
    if cfg.trainer.get("ema_decay"):
        problems.append(
            (
                "trainer.ema_decay",
                "a weight EMA restarts every round and would replace the update that is sent",
                "use trainer=default (no EMA)",
            )
        )
    for key, allowed in (("class_balance", ("federation", "site")), ("select", ("best", "last"))):
        if str(fed.get(key)) not in allowed:
            problems.append(
                (f"federation.{key}", f"{fed.get(key)!r} is not one of {allowed}", None)
            )
    for key in ("rounds", "local_epochs", "min_replies"):
        v = fed.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            problems.append((f"federation.{key}", f"{v!r} is not a whole number >= 1", None))
    if fed.privacy.secagg and fed.privacy.dp.noise_multiplier is not None:
        problems.append(
            (
                "federation.privacy",
                "SecAgg+ and server-side DP cannot be combined: the server never sees the "
                "single updates it would have to clip",
                "choose one of federation.privacy.secagg / federation.privacy.dp",
            )
        )
    if problems:
        key, what, fix = problems[0]
        raise ConfigError(f"{key}: {what}", column=key, fix=fix)


def local_seed(seed: int, server_round: int, site: str) -> int:
    """A different, reproducible seed for every site and round."""
    return (int(seed) * 1_000_003 + server_round * 7_919 + zlib.crc32(site.encode())) % 2**31


def load_site(cfg: Any, manifest: Manifest, site: str, column: str = "site") -> SiteData:
    """Split, check and decode one site's images (cached for the life of the process)."""
    from omegaconf import OmegaConf

    wanted = {k: cfg[k] for k in ("data", "model", "augmentation", "seed")}
    key = (str(manifest.root), manifest.name, len(manifest), site, OmegaConf.to_yaml(wanted))
    if key in _CACHE:
        return _CACHE[key]
    data = _load(cfg, manifest, site, column)
    _CACHE[key] = data
    return data


def _load(cfg: Any, manifest: Manifest, site: str, column: str) -> SiteData:
    from hydra.utils import instantiate

    from skinml.data.fingerprint import dataset_fingerprint
    from skinml.data.manifest import cluster_unit
    from skinml.data.torch_dataset import ManifestImageDataset, load_resized_images
    from skinml.data.transforms import build_augmentation

    classes = [str(c) for c in cfg.data.classes]
    rows = labels_as_classes(site_rows(manifest, site, column), classes)
    split = split_site(rows, cfg.data.split, int(cfg.seed))
    counts = SiteCounts.of(site, split, classes)
    model = build_model(cfg, len(classes))
    prep = preprocessing(cfg, model)
    targets = _targets(split, classes)
    frame = split.frame
    unit = cluster_unit(frame)
    ids = frame["patient_id"] if unit == "patients" else frame["lesion_id"]
    # factorised per site: the server learns which rows share a patient, never who
    codes = np.asarray(ids.astype(str).factorize()[0], dtype=np.int64)
    datasets, clusters = {}, {}
    augment = build_augmentation(instantiate(cfg.augmentation.transforms), seed=int(cfg.seed))
    for name in ("train", "val", "test"):
        part = split.split(name)
        mask = (frame["split"] == name).to_numpy()
        clusters[name] = codes[mask]
        if len(part) == 0:
            datasets[name] = None
            continue
        images = load_resized_images(
            part, prep, threads=int(cfg.data.get("decode_threads", 2)), progress=False
        )
        datasets[name] = ManifestImageDataset(
            images, targets[name], prep, augment if name == "train" else None
        )
    return SiteData(
        site=site,
        manifest=split,
        classes=classes,
        datasets=datasets,
        targets=targets,
        clusters=clusters,
        cluster_unit=unit,
        counts=counts,
        fingerprint=dataset_fingerprint(split),
    )


def _targets(split: Manifest, classes: list[str]) -> dict[str, np.ndarray]:
    from skinml.data.torch_dataset import encode_labels

    index = {c: i for i, c in enumerate(classes)}
    return {
        s: encode_labels(split.split(s).frame["label"].tolist(), index, source=split.name)
        if (split.frame["split"] == s).any()
        else np.zeros(0, dtype=np.int64)
        for s in ("train", "val", "test")
    }


def build_model(cfg: Any, num_classes: int) -> Any:
    """The configured network (same factory as ``skinml-train``)."""
    from hydra.utils import instantiate

    return instantiate(cfg.model)(num_classes=num_classes)


def preprocessing(cfg: Any, model: Any) -> Any:
    """The model's preprocessing at the configured size (recorded in the model file)."""
    from skinml.models.factory import preprocessing_for

    return preprocessing_for(
        model,
        cfg.data.image_size,
        resize=cfg.data.resize,
        crop_pct=cfg.data.crop_pct,
        decode=str(cfg.data.get("decode", "fast")),
    )


def train_local(
    data: SiteData,
    cfg: Any,
    state: dict[str, Any],
    *,
    server_round: int,
    epochs: int,
    proximal_mu: float = 0.0,
    class_counts: list[int] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Local epochs from the global ``state``; returns the new weights and training figures.

    With ``proximal_mu > 0`` (FedProx) the loss gets ``mu/2 * ||w - w_global||^2``.
    ``class_counts`` (the federation's training images per class, from the counts every
    site reported before round 1) sets the class balance, so that every hospital weights
    the classes as pooled training would; without it the site's own counts are used.
    """
    import time

    from hydra.utils import instantiate

    from skinml.data.torch_dataset import class_weights
    from skinml.training.run_evaluation import validation_metrics

    model = build_model(cfg, len(data.classes))
    model.load_state_dict(state)
    trainer = instantiate(cfg.trainer)
    trainer.max_epochs = int(epochs)
    trainer.early_stopping_patience = int(epochs) + 1
    trainer.progress = False
    targets = data.targets["train"]
    counts_for_weights = (
        targets
        if class_counts is None
        else np.repeat(np.arange(len(data.classes)), np.asarray(class_counts, dtype=np.int64))
    )
    weights = class_weights(counts_for_weights, len(data.classes), float(cfg.data.balance_power))
    balance = cfg.data.class_balance
    regularizer = None
    if proximal_mu > 0:
        anchor = [p.detach().clone() for p in model.parameters()]

        def regularizer(net):
            return (proximal_mu / 2) * sum(
                (p - a.to(p.device)).pow(2).sum()
                for p, a in zip(net.parameters(), anchor, strict=True)
            )

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skinml-fed-") as tmp:
        result = trainer.fit(
            model,
            data.datasets["train"],
            data.datasets["val"],
            optimizer_factory=instantiate(cfg.optim),
            scheduler_factory=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
            checkpoint_dir=tmp,
            seed=local_seed(int(cfg.seed), server_round, data.site),
            loss_weights=weights if balance == "loss_weights" else None,
            sample_weights=weights[targets] if balance == "sampler" else None,
            validate=validation_metrics(data.classes),
            regularizer=regularizer,
        )
    last = result.history[-1] if result.history else {}
    new_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return new_state, {
        "train_loss": float(last.get("train_loss", float("nan"))),
        "train_seconds": float(time.perf_counter() - t0),
    }


def predict(data: SiteData, cfg: Any, state: dict[str, Any], split: str) -> np.ndarray:
    """Logits of the global model on one split of this site (no TTA: the export has none)."""
    from hydra.utils import instantiate

    model = build_model(cfg, len(data.classes))
    model.load_state_dict(state)
    trainer = instantiate(cfg.trainer)
    trainer.progress = False
    if data.datasets[split] is None:
        return np.zeros((0, len(data.classes)), dtype=np.float32)
    logits, _ = trainer.predict_logits(model.eval(), data.datasets[split], tta=False)
    return logits.astype(np.float32)
