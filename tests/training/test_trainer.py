"""Trainer mechanics on in-memory data: sampling, class balance, exact resume."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skinml.data.torch_dataset import ManifestImageDataset, class_weights  # noqa: E402
from skinml.data.transforms import build_augmentation  # noqa: E402
from skinml.modelfile.metadata import Preprocessing  # noqa: E402
from skinml.models.factory import create_classifier  # noqa: E402
from skinml.training.distributed import EpochSampler  # noqa: E402
from skinml.training.trainer import Trainer  # noqa: E402


def test_epoch_sampler_shards_cover_the_data_once():
    shards = [list(EpochSampler(103, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 52
    assert set(shards[0]).isdisjoint(shards[1]) or len(set(shards[0]) & set(shards[1])) == 1
    assert set(shards[0]) | set(shards[1]) == set(range(103))


def test_epoch_sampler_order_depends_only_on_seed_and_epoch():
    a, b = EpochSampler(50, seed=7), EpochSampler(50, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)


def test_weighted_sampler_balances_classes():
    targets = np.array([0] * 900 + [1] * 100)
    w = class_weights(targets, 2)[targets]
    drawn = targets[list(EpochSampler(1000, weights=w, seed=0))]
    assert 0.4 < drawn.mean() < 0.6


def test_class_weights_inverse_frequency():
    w = class_weights(np.array([0, 0, 0, 1]), 2)
    assert w[1] / w[0] == pytest.approx(3.0)
    assert class_weights(np.array([0, 0, 0, 1]), 2, power=0.5)[1] / class_weights(
        np.array([0, 0, 0, 1]), 2, power=0.5
    )[0] == pytest.approx(np.sqrt(3.0))


def _data(n=64):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    imgs = (rng.random((n, 32, 32, 3)) * 80 + y[:, None, None, None] * 120).astype(np.uint8)
    prep = Preprocessing(input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3)
    import albumentations as A

    def make(aug):
        transforms = [A.HorizontalFlip(p=0.5), A.Affine(rotate=(-20, 20), p=0.5)] if aug else []
        return ManifestImageDataset(imgs, y, prep, build_augmentation(transforms) if aug else None)

    return make


def _fit(tmp, make, resume=None, on_epoch_end=None):
    torch.manual_seed(0)
    model = create_classifier("resnet10t", 2, drop_rate=0.2)
    trainer = Trainer(
        max_epochs=3,
        batch_size=16,
        device="cpu",
        progress=False,
        early_stopping_patience=10,
        threads=1,
    )
    return trainer.fit(
        model,
        make(True),
        make(False),
        optimizer_factory=functools.partial(torch.optim.AdamW, lr=1e-3),
        scheduler_factory=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3),
        checkpoint_dir=tmp,
        seed=3,
        resume_from=resume,
        on_epoch_end=on_epoch_end,
    )


class _CrashError(Exception):
    pass


def test_interrupted_and_resumed_training_matches_uninterrupted(tmp_path):
    make = _data()
    full = _fit(tmp_path / "full", make)

    def crash_after_first_epoch(epoch, metrics):
        if epoch == 0:
            raise _CrashError

    with pytest.raises(_CrashError):
        _fit(tmp_path / "cut", make, on_epoch_end=crash_after_first_epoch)
    resumed = _fit(tmp_path / "cut", make, resume=tmp_path / "cut" / "last.pt")
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    for k, v in full.best_state_dict.items():
        assert torch.equal(v, resumed.best_state_dict[k]), k
    assert (tmp_path / "cut" / "best.pt").exists()


def test_early_stopping_stops_and_keeps_best(tmp_path):
    make = _data()
    torch.manual_seed(0)
    model = create_classifier("resnet10t", 2)
    trainer = Trainer(
        max_epochs=6,
        batch_size=16,
        device="cpu",
        progress=False,
        early_stopping_patience=1,
        monitor="val_never_improves",
        threads=1,
    )
    res = trainer.fit(
        model,
        make(True),
        make(False),
        optimizer_factory=functools.partial(torch.optim.SGD, lr=0.0),
        scheduler_factory=None,
        checkpoint_dir=tmp_path,
        seed=0,
        validate=lambda logits, y: {"val_never_improves": 0.5},
    )
    assert res.stopped_early and len(res.history) == 2 and res.best_epoch == 0
