"""Ablation: does any fine-tuning extra of skinml's loop cost speed?

Times skinml's Trainer (``+experiment=ham10000_lesion_lite0``) with the EMA, gradient
clipping and parameter groups switched off one at a time, beside the hand loop with
channels_last (``run.py``'s), on the first N HAM10000 lesion-split training images. Prints
images/s inside the training loop; nothing is written.

Usage::

    .venv/bin/python experiments/train_throughput/ablate_extras.py --size 128 --images 320
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {
    "skinml finetune": {},
    "no ema": {"trainer.ema_decay": None},
    "no clip": {"trainer.grad_clip_norm": None},
    "one group": {"trainer.backbone_lr_scale": 1.0, "trainer.no_weight_decay_1d": False},
    "bare": {
        "trainer.ema_decay": None,
        "trainer.grad_clip_norm": None,
        "trainer.backbone_lr_scale": 1.0,
        "trainer.no_weight_decay_1d": False,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import run
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from skinml.data.torch_dataset import ManifestImageDataset, load_resized_images
    from skinml.data.transforms import build_augmentation
    from skinml.models.factory import preprocessing_for
    from skinml.training.data_setup import prepare_data, split_targets

    cfg = run.compose("ham10000_lesion_lite0", [f"data.image_size={args.size}"])
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(cfg.data, seed=0, run_dir=Path(tmp))
    targets = split_targets(data.manifest, data.classes)
    model = instantiate(cfg.model)(num_classes=len(data.classes))
    prep = preprocessing_for(model, args.size, resize=cfg.data.resize)
    images = {
        s: load_resized_images(run._first(data.manifest.split(s), args.images), prep, threads=2)
        for s in ("train", "val")
    }
    targets = {s: targets[s][: len(images[s])] for s in ("train", "val")}
    augment = build_augmentation(instantiate(cfg.augmentation.transforms), seed=0)
    train = ManifestImageDataset(images["train"], targets["train"], prep, augment)
    datasets = (
        train,
        ManifestImageDataset(images["val"][:64], targets["val"][:64], prep),
        data.classes,
    )

    t0, n = time.perf_counter(), 0
    for _, y in torch.utils.data.DataLoader(train, batch_size=32, shuffle=True):
        n += len(y)
    print(f"data pipeline alone: {n / (time.perf_counter() - t0):.1f} img/s", flush=True)
    for rep in range(args.repeats):
        hand = run.hand_loop(
            cfg, images["train"], targets["train"], prep, 1, 2, rep, "channels_last"
        )
        print(f"repeat {rep} hand channels_last: {hand:.1f}", flush=True)
        for name, overrides in VARIANTS.items():
            variant = cfg.copy()
            for key, value in overrides.items():
                OmegaConf.update(variant, key, value)
            got = run.skinml_trainer(variant, datasets, 1, 2, rep)
            print(f"repeat {rep} {name}: loop {got['train_loop']:.1f}", flush=True)


if __name__ == "__main__":
    main()
