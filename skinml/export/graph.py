"""The exported graph: logits, calibrated probabilities and class-activation maps in one ONNX file.

Calibration (temperature) is applied inside the graph so no consumer can forget
it. The CAM output lets the torch-free predictor draw heatmaps: for a network
whose head is global average pooling followed by a linear layer, the logit of
class k is the spatial mean of ``W_k · F + b_k``, so that map is an exact
decomposition of the logit over image regions (Zhou et al., CVPR 2016).

A metadata-fusion model (:mod:`skinml.models.fusion`) has a second graph input,
``metadata``, and its CAM is the image map plus the per-image constant the metadata
adds to each logit, so the spatial mean is still exactly the logit.

A run trained with test-time augmentation had its temperature and thresholds fitted on
the *average of the flip views' logits*; the graph then computes exactly that (the views
go through the network as one batch, their logits are averaged, and only then the
temperature and softmax are applied), so the file's default output is the run's. Each
view's CAM is flipped back onto the input and the maps are averaged: a flip does not
change a map's spatial mean, so the averaged map still decomposes the averaged logit.
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
from skinml.modelfile.tta import flip_axes
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
    """Wrap a classifier so that its graph outputs logits, calibrated probabilities and CAMs.

    Args:
        model: the trained network (eval mode).
        temperature: the fitted calibration temperature, applied in the graph.
        with_cam: also output class-activation maps (needs a pool + linear head).
        tta_views: flip views (:mod:`skinml.modelfile.tta`) whose logits are averaged
            before the temperature, as training did; empty for none.
    """

    def __init__(
        self,
        model: nn.Module,
        temperature: float = 1.0,
        with_cam: bool = True,
        tta_views: tuple[str, ...] = (),
    ):
        super().__init__()
        if not temperature > 0:
            raise ExportError(
                f"calibration temperature must be positive, got {temperature}",
                fix="refit temperature scaling on the validation split",
            )
        self.model = model
        self.temperature = float(temperature)
        self.with_cam = with_cam
        self.tta_views = tuple(tta_views)
        self._axes = [flip_axes(v) for v in self.tta_views]

    #: graph input names, in the order ``forward`` takes them
    input_names: tuple[str, ...] = (INPUT_NAME,)

    def _stack_views(self, image: torch.Tensor) -> torch.Tensor:
        """All views as one batch, view-major: ``[view_0 images, view_1 images, ...]``."""
        if not self._axes:
            return image
        return torch.cat([image.flip(a) if a else image for a in self._axes], dim=0)

    def _repeat(self, t: torch.Tensor) -> torch.Tensor:
        """A per-image input (metadata) repeated for every view; it is never flipped."""
        return t.repeat(len(self._axes), 1) if self._axes else t

    def _mean_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._axes:
            return logits
        return logits.reshape(len(self._axes), -1, logits.shape[-1]).mean(dim=0)

    def _mean_cam(self, cam: torch.Tensor) -> torch.Tensor:
        """Each view's map flipped back onto the input, then averaged."""
        if not self._axes:
            return cam
        views = cam.reshape(len(self._axes), -1, *cam.shape[1:])
        return torch.stack(
            [views[i].flip(a) if a else views[i] for i, a in enumerate(self._axes)]
        ).mean(dim=0)

    def _image_cam(self, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self._mean_cam(torch.einsum("kc,nchw->nkhw", weight, feats))

    def forward(self, image: torch.Tensor):
        x = self._stack_views(image)
        if self.with_cam:
            feats = self.model.forward_features(x)
            logits = self._mean_logits(self.model.forward_head(feats))
        else:
            logits = self._mean_logits(self.model(x))
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        if not self.with_cam:
            return logits, probabilities
        fc = self.model.get_classifier()
        cam = self._image_cam(feats, fc.weight)
        if fc.bias is not None:
            cam = cam + fc.bias[None, :, None, None]
        return logits, probabilities, cam


class ExportableFusionClassifier(ExportableClassifier):
    """The same outputs for a metadata-fusion model, whose graph takes ``(image, metadata)``."""

    input_names = (INPUT_NAME, METADATA_INPUT_NAME)

    def forward(self, image: torch.Tensor, metadata: torch.Tensor):  # type: ignore[override]
        feats = self.model.forward_features(self._stack_views(image))
        logits = self._mean_logits(self.model.forward_head(feats, self._repeat(metadata)))
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        if not self.with_cam:
            return logits, probabilities
        cam = self._image_cam(feats, self.model.image_weight())
        cam = cam + self.model.metadata_term(metadata)[:, :, None, None]
        return logits, probabilities, cam


def exportable(
    model: nn.Module,
    temperature: float = 1.0,
    with_cam: bool = True,
    tta_views: tuple[str, ...] = (),
):
    """The export wrapper that fits the model: one input (image) or two (image, metadata)."""
    cls = ExportableFusionClassifier if is_fusion_model(model) else ExportableClassifier
    return cls(model, temperature, with_cam, tta_views)


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
