"""Training throughput: skinml's Trainer against a minimal hand-written timm + PyTorch loop.

Both train the same timm model on the same cached real images (the DermaMNIST training
split of HAM10000, decoded and resized once), with the same albumentations pipeline,
optimizer, scheduler, batch size and thread count. Runs alternate (hand, skinml, hand,
skinml, ...) so that drift in machine load hits both alike.

Two skinml figures are reported:

* ``train_loop`` - images/s inside the training loop (what the hand loop measures too),
* ``wall`` - images/s including what the hand loop does not do: per-epoch validation
  on the validation split and the checkpoint written every epoch.

The hand loop can also be run with channels_last and with ``torch.compile`` (``--hand
channels_last compile``), to measure whether either is worth adopting on CPU.

Usage::

    .venv/bin/python experiments/train_throughput/run.py                      # 28 px
    .venv/bin/python experiments/train_throughput/run.py --experiment dermamnist_64
    .venv/bin/python experiments/train_throughput/run.py --experiment ham10000_lesion_lite0 \
        --override data.image_size=224 --max-train-images 384 --epochs 1 \
        --hand plain channels_last compile --out experiments/train_throughput/lite0_224.json

Writes ``results.json`` beside this file unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def compose(experiment: str, overrides: list[str]):
    """The resolved training config skinml-train would use for this experiment."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    shared = os.environ.get("SKINML_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = hydra_compose(
            "train",
            overrides=[f"+experiment={experiment}", *overrides],
            return_hydra_config=True,
        )
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    os.environ.setdefault("SKINML_SHARED_DATA", shared)
    HydraConfig.instance().set_config(cfg)  # for the ${hydra:...} interpolations
    OmegaConf.set_struct(cfg, False)
    del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg


def hand_loop(
    cfg, images, targets, prep, epochs: int, threads: int, seed: int, variant: str = "plain"
) -> float:
    """The minimal loop a researcher would write; returns training images/s.

    ``variant``: ``plain`` (NCHW), ``channels_last``, or ``compile`` (channels_last plus
    ``torch.compile``; its compilation is excluded by a warm-up step before timing).
    """
    import albumentations as A
    import timm
    import torch
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader, Dataset

    from skinml.imaging.preprocess import normalize

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    aug = A.Compose(list(instantiate(cfg.augmentation.transforms)), seed=seed)

    class Images(Dataset):
        def __len__(self):
            return len(targets)

        def __getitem__(self, i):
            img = aug(image=images[i])["image"]
            return torch.from_numpy(normalize(img, prep)), int(targets[i])

    n_classes = len(cfg.data.classes)
    model = timm.create_model(cfg.model.name, num_classes=n_classes, drop_rate=cfg.model.drop_rate)
    fast = variant in ("channels_last", "compile")
    if fast:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if variant == "compile" else model
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    loader = DataLoader(Images(), batch_size=cfg.trainer.batch_size, shuffle=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.optim.lr, total_steps=len(loader) * epochs
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    if variant == "compile":  # compile once, outside the timed loop
        x, y = next(iter(loader))
        loss_fn(net(x.contiguous(memory_format=torch.channels_last)), y).backward()
        opt.zero_grad(set_to_none=True)
    seen, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            if fast:
                x = x.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
    return seen / (time.perf_counter() - t0)


def skinml_trainer(cfg, datasets, epochs: int, threads: int, seed: int) -> dict[str, float]:
    """skinml's Trainer as skinml-train runs it; returns loop and wall images/s."""
    from hydra.utils import instantiate

    from skinml.training.run_evaluation import validation_metrics

    trainer = instantiate(cfg.trainer, max_epochs=epochs, threads=threads, progress=False)
    train_ds, val_ds, classes = datasets
    model = instantiate(cfg.model)(num_classes=len(classes))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = trainer.fit(
            model,
            train_ds,
            val_ds,
            optimizer_factory=instantiate(cfg.optim),
            scheduler_factory=instantiate(cfg.scheduler),
            checkpoint_dir=tmp,
            seed=seed,
            validate=validation_metrics(classes),
        )
        wall = time.perf_counter() - t0
    loop = [h["train_images_per_s"] for h in result.history]
    return {"train_loop": statistics.mean(loop), "wall": len(train_ds) * epochs / wall}


def _first(manifest, n: int | None):
    """The first ``n`` rows of a manifest (all when ``n`` is None)."""
    return manifest if n is None else manifest.subset([i < n for i in range(len(manifest))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="dermamnist_28")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating run pairs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--override", action="append", default=[], help="Hydra override")
    parser.add_argument(
        "--max-train-images", type=int, help="time on the first N training images only"
    )
    parser.add_argument(
        "--hand",
        nargs="+",
        default=["plain"],
        choices=["plain", "channels_last", "compile"],
        help="hand-loop variants to time (each against skinml in every repeat)",
    )
    args = parser.parse_args()

    import torch
    from hydra.utils import instantiate

    from skinml.data.torch_dataset import ManifestImageDataset, load_resized_images
    from skinml.data.transforms import build_augmentation
    from skinml.models.factory import preprocessing_for
    from skinml.training.data_setup import prepare_data, split_targets

    cfg = compose(args.experiment, args.override)
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(cfg.data, seed=cfg.seed, run_dir=Path(tmp))
    targets = split_targets(data.manifest, data.classes)
    model = instantiate(cfg.model)(num_classes=len(data.classes))
    prep = preprocessing_for(model, cfg.data.image_size, resize=cfg.data.resize)
    limit = {"train": args.max_train_images, "val": args.max_train_images}
    images = {
        s: load_resized_images(
            _first(data.manifest.split(s), limit[s]),
            prep,
            threads=args.threads,
        )
        for s in ("train", "val")
    }
    if args.max_train_images:
        targets = {s: targets[s][: len(images[s])] for s in ("train", "val")}
    augment = build_augmentation(instantiate(cfg.augmentation.transforms), seed=args.seed)
    datasets = (
        ManifestImageDataset(images["train"], targets["train"], prep, augment),
        ManifestImageDataset(images["val"], targets["val"], prep),
        data.classes,
    )

    hands: dict[str, list[float]] = {v: [] for v in args.hand}
    loop, wall = [], []
    for r in range(args.repeats):
        for variant in args.hand:
            try:
                rate = hand_loop(
                    cfg,
                    images["train"],
                    targets["train"],
                    prep,
                    args.epochs,
                    args.threads,
                    r,
                    variant,
                )
            except Exception as exc:  # torch.compile can fail in many ways on CPU
                print(f"hand loop {variant} failed: {type(exc).__name__}: {exc}", flush=True)
                rate = float("nan")
            hands[variant].append(rate)
        got = skinml_trainer(cfg, datasets, args.epochs, args.threads, r)
        loop.append(got["train_loop"])
        wall.append(got["wall"])
        shown = "  ".join(f"hand[{v}] {x[-1]:.1f}" for v, x in hands.items())
        print(f"repeat {r}: {shown}  skinml loop {loop[-1]:.1f}  wall {wall[-1]:.1f}", flush=True)
    hand = hands[args.hand[0]]

    from skinml.tracking.provenance import command_provenance

    med = statistics.median
    results = {
        "experiment": args.experiment,
        "model": cfg.model.name,
        "image_size": int(cfg.data.image_size),
        "batch_size": int(cfg.trainer.batch_size),
        "n_train_images": len(targets["train"]),
        "epochs_per_run": args.epochs,
        "repeats": args.repeats,
        "threads": args.threads,
        "hand_loop_images_per_s": med(hand),
        "skinml_train_loop_images_per_s": med(loop),
        "skinml_wall_images_per_s_incl_validation_and_checkpoint": med(wall),
        "skinml_over_hand_loop": med(loop) / med(hand),
        "skinml_wall_over_hand_loop": med(wall) / med(hand),
        "hand_variant": args.hand[0],
        "skinml_channels_last": bool(cfg.trainer.channels_last),
        **{f"hand_loop_{v}_images_per_s": med(x) for v, x in hands.items() if v != args.hand[0]},
        **{
            f"skinml_over_hand_loop_{v}": med(loop) / med(x)
            for v, x in hands.items()
            if v != args.hand[0]
        },
        "all_runs": {"hand": hand, "skinml_loop": loop, "skinml_wall": wall, "hands": hands},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    results["provenance"] = command_provenance()
    out = args.out or HERE / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "all_runs"}, indent=2))


if __name__ == "__main__":
    main()
