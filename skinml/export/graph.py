"""The exported graph: logits, calibrated probabilities and class-activation maps in one ONNX file.

Calibration (temperature) is applied inside the graph so no consumer can forget
it. The CAM output lets the torch-free predictor draw heatmaps: for a network
whose head is global average pooling followed by a linear layer, the logit of
class k is the spatial mean of ``W_k · F + b_k``, so that map is an exact
decomposition of the logit over image regions (Zhou et al., CVPR 2016).

A metadata-fusion model (:mod:`skinml.models.fusion`) has a second graph input,
``metadata``, and its CAM is the image map plus the per-image constant the metadata
adds to each logit, so the spatial mean is still exactly the logit.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skinml.export.errors import ExportError
from skinml.modelfile.metadata_input import METADATA_INPUT_NAME
from skinml.models.fusion import MetadataFusionClassifier, is_fusion_model

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "probabilities", "cam")


@dataclass(frozen=True)
class CamSupport:
    """Whether exact CAMs can be computed in-graph for this architecture, and why not."""

    available: bool
    reason: str = ""
    feature_shape: tuple[int, ...] | None = None


def cam_support(model: nn.Module, input_size: tuple[int, int]) -> CamSupport:
    """Check that the head is global-average-pool + linear, so that CAM == logit decomposition.

    Checked numerically on a random input rather than by class name, so any timm
    model with such a head qualifies (ResNets, EfficientNets, DenseNets...),
    and models with a norm after pooling (ConvNeXt) or token outputs (ViT) do not.
    """
    if isinstance(model, MetadataFusionClassifier):
        return _fusion_cam_support(model, input_size)
    needed = ("forward_features", "forward_head", "get_classifier")
    if not all(hasattr(model, a) for a in needed):
        return CamSupport(False, "the network is not a timm model with forward_features/head")
    fc = model.get_classifier()
    if not isinstance(fc, nn.Linear):
        return CamSupport(False, f"the classifier is {type(fc).__name__}, not a linear layer")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *input_size, generator=gen)
    with torch.no_grad():
        feats = model.forward_features(x)
        if feats.ndim != 4:
            return CamSupport(False, f"the last feature map has {feats.ndim} axes, not N×C×H×W")
        pooled = model.forward_head(feats, pre_logits=True)
        if pooled.shape != feats.shape[:2] or not torch.allclose(
            pooled, feats.mean(dim=(2, 3)), atol=1e-5, rtol=1e-4
        ):
            return CamSupport(False, "the head is not plain global average pooling")
        logits = model.forward_head(feats)
        if not torch.allclose(logits, fc(pooled), atol=1e-5, rtol=1e-4):
            return CamSupport(False, "the head does more than pool + linear layer")
    return CamSupport(True, feature_shape=tuple(int(s) for s in feats.shape[1:]))


def _fusion_cam_support(model: MetadataFusionClassifier, input_size: tuple[int, int]) -> CamSupport:
    """The fusion head is linear over [pooled, embedding]: check that pooling is plain GAP."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *input_size, generator=gen)
    m = torch.randn(2, model.metadata_features, generator=gen)
    with torch.no_grad():
        feats = model.forward_features(x)
        if feats.ndim != 4:
            return CamSupport(False, f"the last feature map has {feats.ndim} axes, not N×C×H×W")
        pooled = model.backbone.forward_head(feats, pre_logits=True)
        if pooled.shape != feats.shape[:2] or not torch.allclose(
            pooled, feats.mean(dim=(2, 3)), atol=1e-5, rtol=1e-4
        ):
            return CamSupport(False, "the image head is not plain global average pooling")
        split = model.image_logits(feats) + model.metadata_term(m)
        if not torch.allclose(model.forward_head(feats, m), split, atol=1e-5, rtol=1e-4):
            return CamSupport(False, "the fusion head does more than one linear layer")
    return CamSupport(True, feature_shape=tuple(int(s) for s in feats.shape[1:]))


class ExportableClassifier(nn.Module):
    """Wrap a classifier so that its graph outputs logits, calibrated probabilities and CAMs."""

    def __init__(self, model: nn.Module, temperature: float = 1.0, with_cam: bool = True):
        super().__init__()
        if not temperature > 0:
            raise ExportError(
                f"calibration temperature must be positive, got {temperature}",
                fix="refit temperature scaling on the validation split",
            )
        self.model = model
        self.temperature = float(temperature)
        self.with_cam = with_cam

    #: graph input names, in the order ``forward`` takes them
    input_names: tuple[str, ...] = (INPUT_NAME,)

    def forward(self, image: torch.Tensor):
        if self.with_cam:
            feats = self.model.forward_features(image)
            logits = self.model.forward_head(feats)
        else:
            logits = self.model(image)
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        if not self.with_cam:
            return logits, probabilities
        fc = self.model.get_classifier()
        cam = torch.einsum("kc,nchw->nkhw", fc.weight, feats)
        if fc.bias is not None:
            cam = cam + fc.bias[None, :, None, None]
        return logits, probabilities, cam


class ExportableFusionClassifier(ExportableClassifier):
    """The same outputs for a metadata-fusion model, whose graph takes ``(image, metadata)``."""

    input_names = (INPUT_NAME, METADATA_INPUT_NAME)

    def forward(self, image: torch.Tensor, metadata: torch.Tensor):  # type: ignore[override]
        feats = self.model.forward_features(image)
        logits = self.model.forward_head(feats, metadata)
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        if not self.with_cam:
            return logits, probabilities
        cam = torch.einsum("kc,nchw->nkhw", self.model.image_weight(), feats)
        cam = cam + self.model.metadata_term(metadata)[:, :, None, None]
        return logits, probabilities, cam


def exportable(model: nn.Module, temperature: float = 1.0, with_cam: bool = True):
    """The export wrapper that fits the model: one input (image) or two (image, metadata)."""
    cls = ExportableFusionClassifier if is_fusion_model(model) else ExportableClassifier
    return cls(model, temperature, with_cam)


def example_inputs(wrapper: ExportableClassifier, input_size: tuple[int, int], batch: int = 2):
    """Seeded random inputs of the right shapes for tracing (and shape checks)."""
    gen = torch.Generator().manual_seed(0)
    out = [torch.randn(batch, 3, *input_size, generator=gen)]
    if METADATA_INPUT_NAME in wrapper.input_names:
        out.append(torch.randn(batch, wrapper.model.metadata_features, generator=gen))
    return tuple(out)


def export_graph(
    wrapper: ExportableClassifier,
    path: str | PathLike[str],
    input_size: tuple[int, int],
    *,
    opset: int | None = None,
) -> str:
    """Export with the dynamo exporter (single file, dynamic batch), legacy exporter as fallback.

    Returns:
        Which exporter produced the file (``"dynamo"`` or ``"legacy-torchscript"``).

    Raises:
        ExportError: when both exporters fail, with both reasons.
    """
    from torch.export import Dim

    wrapper = wrapper.eval()
    # the exporter's optimisation passes log every merged initializer at INFO
    for noisy in ("onnx_ir", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    names = list(OUTPUT_NAMES if wrapper.with_cam else OUTPUT_NAMES[:2])
    example = example_inputs(wrapper, input_size)
    inputs = list(wrapper.input_names)
    batch = Dim("batch")  # one symbol: every input shares the batch axis
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                example,
                str(path),
                dynamo=True,
                external_data=False,
                input_names=inputs,
                output_names=names,
                dynamic_shapes={name: {0: batch} for name in inputs},
                opset_version=opset,
                verbose=False,
            )
        return "dynamo"
    except Exception as dynamo_exc:  # the exporter raises many unrelated exception types
        legacy_error = _export_legacy(wrapper, example, path, inputs, names, opset)
        if legacy_error is None:
            warnings.warn(
                f"the dynamo ONNX exporter failed ({dynamo_exc}); used the legacy TorchScript "
                "exporter instead",
                stacklevel=2,
            )
            return "legacy-torchscript"
        raise ExportError(
            f"ONNX export failed with the dynamo exporter ({dynamo_exc}) and with the legacy "
            f"exporter ({legacy_error})",
            fix="check that the architecture is traceable (timm models are), or try --opset 17",
        ) from dynamo_exc


def _export_legacy(
    wrapper: nn.Module,
    example: tuple[Any, ...],
    path: Path,
    inputs: list[str],
    names: list[str],
    opset: int | None,
) -> Exception | None:
    axes = {n: {0: "batch"} for n in [*inputs, *names]}
    try:
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            dynamo=False,
            input_names=inputs,
            output_names=names,
            dynamic_axes=axes,
            opset_version=opset or 17,
        )
    except Exception as exc:  # see export_graph
        return exc
    return None
