"""Grad-CAM overlays: right shapes, the right layer, and heat where the evidence is."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torch import nn

from skinml.errors import ConfigError, DataError
from skinml.explain import (
    find_target_layer,
    gradcam_maps,
    gradcam_overlays,
    overlay_grid_figure,
    save_overlay_grid,
)


def _square_detector() -> nn.Module:
    """A hand-made CNN whose class 1 logit is the area of bright pixels (class 0: minus it)."""
    conv = nn.Conv2d(3, 1, kernel_size=1)
    head = nn.Linear(1, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # brightness summed over RGB, in [0, 3]
        conv.bias.fill_(-1.5)  # positive only on bright pixels
        head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def _images_with_square(n: int = 2, size: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    x = torch.full((n, 3, size, size), 0.1)
    mask = np.zeros((size, size), dtype=bool)
    mask[8:24, 36:52] = True  # top right
    x[:, :, 8:24, 36:52] = 0.9
    return x, mask


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_heat_concentrates_on_the_bright_square(method):
    model = _square_detector().eval()
    x, mask = _images_with_square()
    maps = gradcam_maps(model, x, targets=[1, 1], method=method)
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    inside, outside = maps[0][mask].mean(), maps[0][~mask].mean()
    assert inside > 0.8 and outside < 0.05
    assert find_target_layer(model, x) is model[0]


def test_heat_differs_between_classes_on_the_hand_made_model():
    model = _square_detector().eval()
    x, mask = _images_with_square()
    for_square, against = gradcam_maps(model, x, targets=[1, 0])
    assert for_square[mask].mean() > 0.8
    assert against[mask].mean() < 0.05  # the class-0 logit only falls with the square


def test_resnet18_overlays_shapes_dtype_and_targets(rng):
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=2).train()
    x = torch.randn(3, 3, 64, 64)
    rgb = [
        rng.random((64, 64, 3)),
        rng.random((80, 96, 3)),
        (rng.random((64, 64, 3)) * 255).astype(np.uint8),
    ]
    overlays = gradcam_overlays(model, x, rgb, targets=[0, 1, 0])
    assert [o.shape for o in overlays] == [(64, 64, 3), (80, 96, 3), (64, 64, 3)]
    assert all(o.dtype == np.uint8 for o in overlays)
    assert model.training  # mode restored
    maps0 = gradcam_maps(model, x[:1], targets=[0])
    maps1 = gradcam_maps(model, x[:1], targets=[1])
    assert not np.allclose(maps0, maps1, atol=1e-3)
    assert maps0.min() >= 0.0 and maps0.max() <= 1.0
    # None explains the predicted class
    pred = int(model.eval()(x[:1]).argmax())
    np.testing.assert_allclose(gradcam_maps(model, x[:1]), maps0 if pred == 0 else maps1, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "layer", "size"),
    [
        ("resnet18", "layer4", 64),
        ("test_efficientnet", "bn2", 64),
        ("test_convnext", "stages", 64),
        ("mobilenetv3_small_050", "blocks", 64),
        ("test_vit", "blocks.5.norm1", 160),
    ],
)
def test_find_target_layer_picks_the_last_spatial_stage(name, layer, size):
    model = timm.create_model(name, pretrained=False, num_classes=2)
    x = torch.randn(1, 3, size, size)
    found = find_target_layer(model, x)
    assert found is model.get_submodule(layer)
    overlay = gradcam_overlays(model, x, [np.zeros((size, size, 3))])[0]
    assert overlay.shape == (size, size, 3)


def test_bad_input_is_explained():
    model = _square_detector()
    x, _ = _images_with_square()
    with pytest.raises(ConfigError, match="unknown CAM method"):
        gradcam_maps(model, x, method="magic")
    with pytest.raises(DataError, match="1 display images for 2 inputs"):
        gradcam_overlays(model, x, [np.zeros((64, 64, 3))])
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
        gradcam_overlays(model, x, [np.full((64, 64, 3), 2.0)] * 2)
    with pytest.raises(DataError, match="1 targets for 2 images"):
        gradcam_maps(model, x, targets=[1])


def test_save_overlay_grid_writes_png(tmp_path):
    model = _square_detector()
    x, _ = _images_with_square(3)
    overlays = gradcam_overlays(model, x, [np.full((64, 64, 3), 0.5)] * 3, targets=[1, 1, 1])
    path = save_overlay_grid(overlays, ["a", "b", "c"], tmp_path / "cams" / "grid.png", ncols=2)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 200
    fig = overlay_grid_figure(overlays, ["a", "b", "c"], ncols=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    with pytest.raises(DataError, match="captions"):
        save_overlay_grid(overlays, ["a"], tmp_path / "x.png")


def test_a_2x2_feature_map_is_labelled_coarse_not_a_localisation():
    from skinml.explain import MIN_CAM_SIDE, coarse_cam_note, feature_map_size

    model = timm.create_model("resnet18", pretrained=False, num_classes=2).eval()
    small = feature_map_size(model, torch.zeros(1, 3, 64, 64))
    assert small == (2, 2)  # 64 px / stride 32
    note = coarse_cam_note(*small)
    assert note.startswith("coarse (2x2 feature map): not a localisation")
    assert feature_map_size(model, torch.zeros(1, 3, 224, 224)) == (7, 7)
    assert coarse_cam_note(7, 7) is None and MIN_CAM_SIDE == 7
    assert feature_map_size(_square_detector(), torch.zeros(1, 3, 32, 32)) == (32, 32)
