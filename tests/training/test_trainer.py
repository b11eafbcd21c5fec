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
        if epoch == 1:  # epochs are counted from 1
            raise _CrashError

    with pytest.raises(_CrashError):
        _fit(tmp_path / "cut", make, on_epoch_end=crash_after_first_epoch)
    resumed = _fit(tmp_path / "cut", make, resume=tmp_path / "cut" / "last.pt")
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
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
    # the first epoch is epoch 1, in the result as in the history
    assert res.stopped_early and len(res.history) == 2 and res.best_epoch == 1
    assert [h["epoch"] for h in res.history] == [1, 2]


def test_backbone_learns_at_its_scale_and_flattening_schedulers_are_refused(tmp_path):
    from skinml.errors import ConfigError
    from skinml.training.finetune import apply_lr_scale, parameter_groups

    model = create_classifier("resnet10t", 2)
    opt = torch.optim.AdamW(
        parameter_groups(model, backbone_lr_scale=0.1, no_decay_1d=True), lr=1e-3
    )
    apply_lr_scale(opt)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["head"]["lr"] == pytest.approx(1e-3)
    assert by_name["backbone"]["lr"] == pytest.approx(1e-4)
    assert by_name["backbone_no_decay"]["weight_decay"] == 0.0
    assert by_name["backbone"]["weight_decay"] == pytest.approx(0.01)
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(model.parameters()))
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    assert {
        id(p) for g in opt.param_groups if g["name"].startswith("head") for p in g["params"]
    } == head_ids

    trainer = Trainer(
        max_epochs=1, batch_size=16, device="cpu", progress=False, threads=1, backbone_lr_scale=0.1
    )
    make = _data(32)
    with pytest.raises(ConfigError, match="warmup_cosine"):
        trainer.fit(
            create_classifier("resnet10t", 2),
            make(False),
            make(False),
            optimizer_factory=functools.partial(torch.optim.AdamW, lr=1e-3),
            scheduler_factory=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3),
            checkpoint_dir=tmp_path,
            seed=0,
        )


def test_warmup_cosine_keeps_group_ratios_and_shape():
    from skinml.training.finetune import warmup_cosine, warmup_cosine_factor

    assert warmup_cosine_factor(0, 100, 10, 0.01) == pytest.approx(0.1)
    assert warmup_cosine_factor(9, 100, 10, 0.01) == pytest.approx(1.0)
    assert warmup_cosine_factor(10, 100, 10, 0.01) == pytest.approx(1.0)
    assert warmup_cosine_factor(100, 100, 10, 0.01) == pytest.approx(0.01)
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [w], "lr": 1.0}, {"params": [], "lr": 0.1}], lr=1.0)
    sched = warmup_cosine(opt, total_steps=20, warmup_fraction=0.25)
    seen = []
    for _ in range(20):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert all(b == pytest.approx(a * 0.1) for a, b in seen)
    assert max(a for a, _ in seen) == pytest.approx(1.0) and seen[0][0] == pytest.approx(0.2)


def test_ema_weights_are_selected_and_resume_exactly(tmp_path):
    """With EMA on, the best state is the averaged weights, and a resumed run matches."""
    make = _data()

    def fit(tmp, resume=None, on_epoch_end=None):
        torch.manual_seed(0)
        model = create_classifier("resnet10t", 2, drop_rate=0.2)
        trainer = Trainer(
            max_epochs=3,
            batch_size=16,
            device="cpu",
            progress=False,
            early_stopping_patience=10,
            threads=1,
            ema_decay=0.9,
            backbone_lr_scale=0.5,
            no_weight_decay_1d=True,
        )
        from skinml.training.finetune import warmup_cosine

        result = trainer.fit(
            model,
            make(True),
            make(False),
            optimizer_factory=functools.partial(torch.optim.AdamW, lr=1e-3),
            scheduler_factory=warmup_cosine,
            checkpoint_dir=tmp,
            seed=3,
            resume_from=resume,
            on_epoch_end=on_epoch_end,
        )
        return model, result

    model, full = fit(tmp_path / "full")
    last = {k: v for k, v in model.state_dict().items()}
    assert any(
        not torch.equal(full.best_state_dict[k], last[k])
        for k in last
        if last[k].is_floating_point()
    )  # the averaged weights, not the last step's

    def crash(epoch, metrics):
        if epoch == 1:
            raise _CrashError

    with pytest.raises(_CrashError):
        fit(tmp_path / "cut", on_epoch_end=crash)
    _, resumed = fit(tmp_path / "cut", resume=tmp_path / "cut" / "last.pt")
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    for k, v in full.best_state_dict.items():
        assert torch.equal(v, resumed.best_state_dict[k]), k


def test_epoch_log_line_counts_from_one():
    from skinml.training.trainer import _epoch_summary

    line = _epoch_summary(3, 15, {"val_loss": 0.5}, "val_loss", {"epoch": 2})
    assert line.startswith("epoch 3/15 ") and line.endswith("(best epoch 2)")
    assert _epoch_summary(1, 15, {}, "val_loss", {"epoch": 1}).endswith("*best*")


def test_checkpoints_counted_from_zero_are_renumbered_on_resume():
    from skinml.training.trainer import EPOCH_NUMBERING, _counted_from_one

    old = {
        "epoch": 1,  # the second epoch, counted from 0 by skinml before epochs started at 1
        "history": [{"epoch": 0, "val_loss": 1.0}, {"epoch": 1, "val_loss": 0.9}],
        "best": {"epoch": 1, "score": -0.9, "stale": 0},
    }
    new = _counted_from_one(old)
    assert new["epoch"] == 2 and [h["epoch"] for h in new["history"]] == [1, 2]
    assert new["best"]["epoch"] == 2 and new["epoch_numbering"] == EPOCH_NUMBERING
    assert _counted_from_one(new) == new  # already counted from 1: unchanged
