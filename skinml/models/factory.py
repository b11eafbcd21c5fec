"""Build a classifier from any timm name and derive the preprocessing that travels with it.

Backbones come from timm's own registry (no registry of ours). Pretrained
weights load from the hub for users online, or from a local file offline.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from skinml.errors import ConfigError
from skinml.modelfile.metadata import Preprocessing


def create_classifier(
    name: str,
    num_classes: int,
    *,
    pretrained: bool = False,
    weights_path: str | PathLike[str] | None = None,
    drop_rate: float = 0.0,
    **kwargs: Any,
):
    """Create a timm classifier with a fresh ``num_classes`` head.

    Args:
        name: any timm model name (``timm.list_models()``), e.g. ``resnet18``.
        num_classes: number of output classes.
        pretrained: download ImageNet weights through timm (needs network).
        weights_path: a local ``.safetensors``/``.pth``/``.bin`` file with pretrained
            weights; works offline. The classifier head is re-initialised.
        drop_rate: dropout before the classifier.

    Raises:
        ConfigError: for an unknown timm name, with close matches.
    """
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:10]
        raise ConfigError(
            f"unknown backbone {name!r}",
            column="model.name",
            expected="a timm model name" + (f", e.g. one of {close}" if close else ""),
            fix="see `python -c \"import timm; print(timm.list_models('*resnet*'))\"`",
        )
    pretrained_cfg_overlay = None
    if weights_path is not None:
        weights = Path(weights_path)
        if not weights.is_file():
            raise ConfigError(
                "pretrained weights file does not exist",
                file=weights,
                fix="download the weights once on a machine with network access, or set "
                "model.weights_path=null",
            )
        pretrained = True
        pretrained_cfg_overlay = {"file": str(weights)}
    try:
        return timm.create_model(
            name,
            pretrained=pretrained,
            num_classes=num_classes,
            drop_rate=drop_rate,
            pretrained_cfg_overlay=pretrained_cfg_overlay,
            **kwargs,
        )
    except (OSError, RuntimeError) as exc:
        if pretrained and weights_path is None:
            raise ConfigError(
                f"could not download pretrained weights for {name!r}: {exc}",
                column="model.pretrained",
                fix="run online once, pass model.weights_path=/path/to/weights.safetensors, "
                "or set model.pretrained=false",
            ) from exc
        raise


def preprocessing_for(
    model: Any,
    input_size: int | tuple[int, int],
    *,
    resize: str = "resize",
    crop_pct: float = 1.0,
) -> Preprocessing:
    """The preprocessing the model expects, from its timm ``pretrained_cfg``.

    Mean and std come from the backbone's pretrained configuration (so a
    pretrained network sees the statistics it was trained with); size and the
    resize policy come from our training config.
    """
    import timm.data

    cfg = timm.data.resolve_data_config({}, model=model)
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    return Preprocessing(
        input_size=(int(size[0]), int(size[1])),
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        resize=resize,
        crop_pct=float(crop_pct),
        interpolation=str(cfg.get("interpolation", "bilinear")),
    )
