"""Grad-CAM heat-map overlays for timm classifiers, via the ``grad-cam`` package.

A heat map shows where the network looked; a clinician uses it to spot a model
that reads the ruler, the ink mark or the vignette instead of the lesion. The
CAM methods themselves come from ``pytorch_grad_cam``; this module only picks
the layer to explain, runs the method in batches and returns images that can
be logged to MLflow or saved as a grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skinml.errors import ConfigError, DataError

#: method name -> pytorch_grad_cam class name
METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "gradcampp": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
}


def _is_nhwc(model: Any) -> bool:
    return str(getattr(model, "output_fmt", "NCHW")).upper() == "NHWC"


def _is_vit(model: Any) -> bool:
    """timm ViT-style models: a token sequence, no spatial feature map."""
    return (
        hasattr(model, "patch_embed")
        and hasattr(model, "blocks")
        and hasattr(model, "num_prefix_tokens")
    )


def _default_input(model: Any):
    import torch

    size = tuple(getattr(model, "pretrained_cfg", {}).get("input_size", (3, 224, 224)))
    param = next(model.parameters(), None)
    device = param.device if param is not None else "cpu"
    return torch.zeros((1, *size), device=device)


def find_target_layer(model: Any, example_input: Any = None):
    """The layer whose activations Grad-CAM should explain: the last spatial feature map.

    Runs one forward pass with hooks and returns the last module (with
    parameters) whose output is a 4-D map with more than one position — the
    last stage of a CNN before global pooling (``layer4`` of a ResNet,
    ``bn2`` after ``conv_head`` of an EfficientNet, the last ``stages`` of a
    ConvNeXt, the last ``blocks`` of a MobileNetV3, whose ``conv_head`` comes
    after pooling). For timm ViTs it returns the last block's ``norm1``
    (explained through :func:`reshape_transform_for`). Falls back to the last
    entry of timm's ``feature_info``.

    Args:
        model: a ``torch.nn.Module`` (any timm classifier, or a plain CNN).
        example_input: a (1, C, H, W) tensor at the resolution you will explain;
            defaults to zeros at the model's ``pretrained_cfg`` input size.

    Raises:
        ConfigError: when no spatial feature map is found.
    """
    import torch

    if _is_vit(model):
        return model.blocks[-1].norm1
    x = _default_input(model) if example_input is None else example_input[:1]
    nhwc = _is_nhwc(model)
    seen: list[tuple[str, Any]] = []

    def hook(name: str, module: Any) -> Callable:
        def record(_m: Any, _inp: Any, out: Any) -> None:
            if torch.is_tensor(out) and out.dim() == 4:
                h, w = (out.shape[1], out.shape[2]) if nhwc else (out.shape[2], out.shape[3])
                if h * w > 1:
                    seen.append((name, module))

        return record

    handles = [
        m.register_forward_hook(hook(name, m))
        for name, m in model.named_modules()
        if name and any(True for _ in m.parameters())
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if seen:
        return seen[-1][1]
    info = getattr(model, "feature_info", None)
    if info:
        last = info[-1]
        name = last["module"] if isinstance(last, dict) else info.module_name()[-1]
        return model.get_submodule(name)
    raise ConfigError(
        f"no spatial feature map found in {type(model).__name__} at input {tuple(x.shape)}",
        column="target_layer",
        fix="use a larger input, or pass target_layer=model.<layer> explicitly",
    )


def feature_map_size(model: Any, example_input: Any, target_layer: Any = None) -> tuple[int, int]:
    """(height, width) of the map that Grad-CAM explains, at ``example_input``'s resolution.

    A CAM has one value per position of this map, whatever the size it is drawn at;
    see :func:`skinml.explain.resolution.coarse_cam_note`.
    """
    import torch

    layer = target_layer if target_layer is not None else find_target_layer(model, example_input)
    reshape = reshape_transform_for(model)
    seen: list[Any] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input[:1])
    finally:
        handle.remove()
        model.train(was_training)
    out = seen[-1]
    fmap = reshape(out) if reshape is not None else out
    return int(fmap.shape[-2]), int(fmap.shape[-1])


def reshape_transform_for(model: Any) -> Callable | None:
    """How to turn the target layer's output into (N, C, H, W), or None if it already is."""
    if _is_vit(model):
        prefix = int(model.num_prefix_tokens)

        def tokens_to_map(t: Any) -> Any:
            t = t[:, prefix:, :]
            side = math.isqrt(t.shape[1])
            if side * side != t.shape[1]:
                raise DataError(
                    f"{t.shape[1]} patch tokens do not form a square grid",
                    column="inputs",
                    expected="square inputs for ViT Grad-CAM",
                )
            return t.reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)

        return tokens_to_map
    if _is_nhwc(model):
        return lambda t: t.permute(0, 3, 1, 2)
    return None


def _cam_class(method: str):
    import pytorch_grad_cam

    key = method.lower().replace("-", "").replace("_", "")
    if key not in METHODS:
        raise ConfigError(
            f"unknown CAM method {method!r}",
            column="method",
            expected=f"one of {sorted(METHODS)}",
        )
    return getattr(pytorch_grad_cam, METHODS[key])


def gradcam_maps(
    model: Any,
    inputs: Any,
    targets: Sequence[int] | None = None,
    method: str = "gradcam",
    *,
    target_layer: Any = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Class activation maps in [0, 1] at input resolution, shape (N, H, W).

    Args:
        model: the classifier (its train/eval mode is restored afterwards).
        inputs: normalised (N, C, H, W) tensor, exactly what the model sees.
        targets: class index to explain per image; None explains the top class.
        method: see ``METHODS`` (``gradcam``, ``gradcam++``, ``hirescam``, ...).
        target_layer: override :func:`find_target_layer`.
        batch_size: images per backward pass (bounds memory).
    """
    import torch
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if not torch.is_tensor(inputs) or inputs.dim() != 4:
        raise DataError(
            f"inputs has shape {tuple(getattr(inputs, 'shape', ()))}",
            column="inputs",
            expected="a normalised (N, C, H, W) torch tensor",
        )
    n = inputs.shape[0]
    if targets is not None and len(targets) != n:
        raise DataError(
            f"{len(targets)} targets for {n} images",
            column="targets",
            fix="pass one class index per image, or None for the predicted class",
        )
    cam_cls = _cam_class(method)
    layer = target_layer if target_layer is not None else find_target_layer(model, inputs[:1])
    was_training = model.training
    maps = []
    try:
        with (
            torch.enable_grad(),
            cam_cls(
                model=model, target_layers=[layer], reshape_transform=reshape_transform_for(model)
            ) as cam,
        ):
            for start in range(0, n, batch_size):
                batch = inputs[start : start + batch_size].detach().clone().requires_grad_(True)
                tgt = None
                if targets is not None:
                    tgt = [
                        ClassifierOutputTarget(int(t)) for t in targets[start : start + batch_size]
                    ]
                maps.append(cam(input_tensor=batch, targets=tgt))
    finally:
        model.train(was_training)
    return np.nan_to_num(np.concatenate(maps).astype(np.float32))


def _as_rgb_float(img: np.ndarray, index: int) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(
            f"rgb image has shape {arr.shape}",
            row=index,
            column="rgb_images",
            expected="H x W x 3 RGB arrays",
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if arr.min() < 0 or arr.max() > 1:
        raise DataError(
            "rgb image values are outside [0, 1]",
            row=index,
            column="rgb_images",
            fix="pass the un-normalised image scaled to [0, 1] (or uint8), not the network input",
        )
    return arr


def overlay_heatmap(rgb: np.ndarray, cam: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat map (resized to the image) over an RGB image; uint8 H x W x 3."""
    import cv2
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = _as_rgb_float(rgb, 0)
    if cam.shape != rgb.shape[:2]:
        cam = cv2.resize(cam, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return show_cam_on_image(rgb, np.clip(cam, 0, 1), use_rgb=True, image_weight=image_weight)


def gradcam_overlays(
    model: Any,
    inputs: Any,
    rgb_images: Sequence[np.ndarray],
    targets: Sequence[int] | None = None,
    method: str = "gradcam",
    *,
    target_layer: Any = None,
    image_weight: float = 0.5,
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Grad-CAM overlays, one uint8 H x W x 3 image per input, ready for ``mlflow.log_image``.

    Args:
        model: the classifier.
        inputs: normalised (N, C, H, W) tensor.
        rgb_images: the same N images for display, float in [0, 1] (or uint8),
            any size (the heat map is resized to each).
        targets: class to explain per image (None = predicted class).
        method: ``gradcam`` (default), ``gradcam++``, ``hirescam``, ``xgradcam``,
            ``layercam`` or ``eigencam``.
        target_layer: override :func:`find_target_layer`.
        image_weight: weight of the photo in the blend (the rest is the heat map).

    Raises:
        DataError: when the number of images and inputs differ, or an image is not RGB.
    """
    if len(rgb_images) != inputs.shape[0]:
        raise DataError(
            f"{len(rgb_images)} display images for {inputs.shape[0]} inputs",
            column="rgb_images",
            fix="pass one display image per input tensor, in the same order",
        )
    rgbs = [_as_rgb_float(img, i) for i, img in enumerate(rgb_images)]
    maps = gradcam_maps(
        model, inputs, targets, method, target_layer=target_layer, batch_size=batch_size
    )
    return [overlay_heatmap(rgb, cam, image_weight) for rgb, cam in zip(rgbs, maps, strict=True)]


def overlay_grid_figure(
    images: Sequence[np.ndarray], captions: Sequence[str], *, ncols: int = 4, title: str = ""
):
    """A matplotlib Figure laying out images with captions (for ``mlflow.log_figure``)."""
    from matplotlib.figure import Figure

    if len(captions) != len(images):
        raise DataError(
            f"{len(captions)} captions for {len(images)} images",
            column="captions",
            fix="pass one caption per image",
        )
    if not images:
        raise DataError("no images to lay out", column="images")
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    fig = Figure(figsize=(2.6 * ncols, 2.9 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes:
        ax.axis("off")
    for ax, img, cap in zip(axes, images, captions, strict=False):
        ax.imshow(img)
        ax.set_title(str(cap), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_overlay_grid(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    path: str | PathLike[str],
    *,
    ncols: int = 4,
    title: str = "",
    dpi: int = 110,
) -> Path:
    """Save images with captions as one PNG grid; returns the path written."""
    fig = overlay_grid_figure(images, captions, ncols=ncols, title=title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
