"""Static int8 quantization (QDQ) with onnxruntime, accepted only if validation accuracy holds.

Calibration ranges come from training-split images (never validation or test),
``quant_pre_process`` runs first as onnxruntime recommends. Two parts stay in float:
the head (pooling, classifier, temperature, softmax, CAM), so calibrated probabilities
are not rounded to 1/255 steps, and the stem (the convolutions reading the normalised
input image), whose few input channels make per-tensor activation ranges coarse. On a
trained ResNet-10-T at 64 px, keeping the stem in float cut the int8 accuracy loss from
3.0 to 0.1 points (experiments/inference_benchmark). A metadata-fusion model's metadata
branch (the MLP reading the ``metadata`` input) also stays in float: it costs next to
nothing, and rounding it would shift every logit of an image by the same error.

How activation ranges are calibrated, and whether depthwise convolutions stay in float, is
an :class:`Int8Recipe`: MobileNet/EfficientNet-style networks are sensitive to both
(experiments/int8_calibration measures the choices on a fine-tuned EfficientNet-Lite0).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skinml.export.errors import ExportError
from skinml.export.images import SplitImages, iter_feeds
from skinml.export.verify import accuracy
from skinml.modelfile.metadata import Preprocessing
from skinml.predict.scores import energy_score, fit_ood_threshold

#: Default refusal bound: 0.5 accuracy points, as a fraction.
DEFAULT_MAX_ACCURACY_LOSS = 0.005


CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class Int8Recipe:
    """How the int8 model is calibrated.

    The default, percentile 99.999 with 7-bit weights and the first five convolutions
    after the stem in float, is the first recipe that met the 0.5-point bound on a
    fine-tuned EfficientNet-Lite0 (experiments/int8_calibration, Part 3: validation loss
    0.0 points, test 0.3, top-1 agreement with fp32 0.96 against 0.84 with every
    convolution quantized, at 1.6x fp32's speed instead of 1.75x).

    Args:
        calibration: ``minmax`` (each activation's observed range), ``percentile`` (clip the
            range at ``percentile`` of the absolute values, ignoring rare outliers) or
            ``entropy`` (the range minimising KL divergence, TensorRT's method).
        percentile: for ``percentile`` calibration.
        float_depthwise: keep depthwise convolutions (``group > 1``) in float; their
            per-channel ranges differ most, and they hold few of the network's operations.
        float_first_convs: keep this many convolutions after the stem in float (the
            first blocks, at the highest resolution). On Lite0 that is where the int8
            error arises: removing the rounding of the first 15 of 63 quantized
            activations recovered the changed decisions, of the other 48 none.
            ``0`` quantizes every convolution.
        reduce_range: 7-bit weights (``[-64, 64]``). On x86 CPUs without VNNI (AVX2 only,
            as in many clinic PCs) onnxruntime's uint8 x int8 kernels add pairs of products
            in 16 bits, which saturates with full 8-bit weights; the file does not know
            which CPU will run it, so by default it is safe on every one
            (experiments/int8_calibration: fewer decisions changed on an AVX2 CPU).
    """

    calibration: str = "percentile"
    percentile: float = 99.999
    float_depthwise: bool = False
    float_first_convs: int = 5
    reduce_range: bool = True

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise ExportError(
                f"unknown int8 calibration method {self.calibration!r}",
                fix=f"use one of {', '.join(CALIBRATION_METHODS)}",
            )
        if self.float_first_convs < 0:
            raise ExportError(
                f"float_first_convs must be >= 0, got {self.float_first_convs}",
                fix="e.g. 5 (the first blocks of an EfficientNet-Lite)",
            )
        if not 90.0 <= self.percentile <= 100.0:
            raise ExportError(
                f"int8 calibration percentile must be in [90, 100], got {self.percentile}",
                fix="e.g. 99.999",
            )

    def describe(self) -> str:
        """How activation ranges were chosen, for the report and the model card."""
        if self.calibration == "percentile":
            return f"uint8 (per-tensor, percentile {self.percentile:g})"
        return f"uint8 (per-tensor, {'MinMax' if self.calibration == 'minmax' else 'entropy'})"

    def describe_weights(self) -> str:
        """How weights were quantized, for the report and the model card."""
        return "int8 (per-channel, 7-bit range)" if self.reduce_range else "int8 (per-channel)"

    def ort_options(self) -> tuple[Any, dict[str, Any]]:
        """(onnxruntime CalibrationMethod, extra_options) for ``quantize_static``."""
        from onnxruntime.quantization import CalibrationMethod

        method = {
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }[self.calibration]
        extra = {"CalibPercentile": self.percentile} if self.calibration == "percentile" else {}
        return method, extra


@dataclass
class QuantizationReport:
    """int8 vs fp32 on validation images, and whether the int8 model was accepted."""

    format: str
    activation_type: str
    weight_type: str
    per_channel: bool
    calibration_split: str
    calibration_images: int
    validation_images: int
    n_labelled: int
    accuracy_fp32: float | None
    accuracy_int8: float | None
    accuracy_loss_points: float | None
    max_accuracy_loss_points: float
    top1_agreement_with_fp32: float
    max_abs_diff_probabilities_vs_fp32: float
    excluded_head_nodes: int
    accepted: bool
    ood_threshold_int8: float | None = None
    float_stem_nodes: int = 0
    float_metadata_nodes: int = 0
    float_depthwise_nodes: int = 0
    float_first_conv_nodes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_nodes(model: Any) -> list[str]:
    """Names of nodes that feed only some of the graph outputs (the heads after the backbone).

    The backbone feeds every output (logits, probabilities, CAM); pooling, the
    classifier, temperature/softmax and the CAM product feed a subset. Found
    structurally, so it works for any architecture without naming layers.
    """
    graph = model.graph
    outputs = [o.name for o in graph.output]
    producer = {out: node for node in graph.node for out in node.output}
    feeds: dict[int, set[str]] = {}
    for out in outputs:
        stack, seen = [out], set()
        while stack:
            name = stack.pop()
            node = producer.get(name)
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            feeds.setdefault(id(node), set()).add(out)
            stack.extend(node.input)
    everything = set(outputs)
    return [n.name for n in graph.node if n.name and feeds.get(id(n), everything) != everything]


#: Ops that only move input values around (the flips and concatenation of in-graph TTA).
_DATA_MOVEMENT_OPS = frozenset(
    {"Slice", "Concat", "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Tile"}
)


def stem_nodes(model: Any) -> list[str]:
    """Names of the convolutions that read a graph input (the network's stem).

    "Read" looks through data-movement ops, so the stem of a graph with test-time
    augmentation (the input flipped by ``Slice`` and stacked by ``Concat``) is found too.
    """
    moved = {i.name for i in model.graph.input}
    for node in model.graph.node:  # topological order
        if node.op_type in _DATA_MOVEMENT_OPS and node.input and node.input[0] in moved:
            moved.update(node.output)
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "Conv" and n.name and n.input and n.input[0] in moved
    ]


def input_only_nodes(model: Any, input_name: str) -> list[str]:
    """Names of the nodes that depend on graph input ``input_name`` and on no other input.

    For a fusion model and ``"metadata"`` this is the metadata MLP. Nodes are in
    topological order in an ONNX graph, so one forward pass propagates the dependencies.
    """
    inputs = {i.name for i in model.graph.input}
    deps: dict[str, frozenset[str]] = {n: frozenset({n}) for n in inputs}
    out = []
    for node in model.graph.node:
        d = frozenset().union(*(deps.get(i, frozenset()) for i in node.input))
        for o in node.output:
            deps[o] = d
        if d == {input_name} and node.name:
            out.append(node.name)
    return out


def first_conv_nodes(model: Any, k: int, skip: Sequence[str] = ()) -> list[str]:
    """Names of the first ``k`` convolutions in graph order that are not in ``skip`` (the stem)."""
    skipped = set(skip)
    convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in skipped]
    return convs[:k]


def depthwise_nodes(model: Any) -> list[str]:
    """Names of the grouped (depthwise) convolutions."""
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "Conv"
        and n.name
        and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed training images (and metadata).

    One image per batch: onnxruntime's histogram calibrators (percentile, entropy) stack
    every batch's activations into one array and fail when a last, shorter batch makes
    the shapes differ ("inhomogeneous shape"); equal batches of one always stack.
    """

    def __init__(self, images: SplitImages, prep: Preprocessing, batch_size: int = 1):
        self._batches = iter_feeds(images, prep, batch_size)
        self.n = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.n += len(batch[0]["image"])
        return batch[0]

    def rewind(self) -> None:  # required by some onnxruntime versions; one pass is enough
        return None


def quantize_int8(
    fp32_path: str | PathLike[str],
    out_path: str | PathLike[str],
    calibration: SplitImages,
    prep: Preprocessing,
    workdir: str | PathLike[str],
    recipe: Int8Recipe = Int8Recipe(),
) -> tuple[Path, int, dict[str, int]]:
    """Pre-process and statically quantize ``fp32_path`` to QDQ int8 at ``out_path``.

    Returns:
        (path, number of calibration images used, number of nodes kept in float per part:
        ``head``, ``stem``, ``metadata``, ``depthwise`` and ``first_convs``).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as _quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = Path(workdir) / "model.preprocessed.onnx"
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
    graph = onnx.load(str(pre))
    head, stem = head_nodes(graph), stem_nodes(graph)
    meta = input_only_nodes(graph, "metadata") if calibration.metadata is not None else []
    depthwise = depthwise_nodes(graph) if recipe.float_depthwise else []
    first = first_conv_nodes(graph, recipe.float_first_convs, skip=stem)
    method, extra_options = recipe.ort_options()
    reader = _Reader(calibration, prep)
    # the histogram calibrators print() their progress; skinml-export reports the outcome
    with contextlib.redirect_stdout(io.StringIO()):
        _quantize_static(
            str(pre),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=recipe.reduce_range,
            calibrate_method=method,
            extra_options=extra_options,
            nodes_to_exclude=sorted(set(head + stem + meta + depthwise + first)),
        )
    kept = {
        "head": len(head),
        "stem": len(stem),
        "metadata": len(meta),
        "depthwise": len(depthwise),
        "first_convs": len(first),
    }
    return Path(out_path), reader.n, kept


def compare_int8(
    fp32_session: Any,
    int8_session: Any,
    validation: SplitImages,
    prep: Preprocessing,
    classes: tuple[str, ...],
    *,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Accuracy of both models, top-1 agreement and max probability difference on validation."""
    p32, p8, e8, labels = [], [], [], []
    for feeds, lab, _ in iter_feeds(validation, prep, batch_size):
        a = fp32_session.run(["probabilities"], feeds)[0]
        b, logits = int8_session.run(["probabilities", "logits"], feeds)
        p32.append(a)
        p8.append(b)
        e8.append(energy_score(logits))
        labels.extend(lab)
    P32, P8 = np.concatenate(p32), np.concatenate(p8)
    acc32, n_lab = accuracy(P32, labels, classes)
    acc8, _ = accuracy(P8, labels, classes)
    return {
        "validation_images": len(P32),
        "n_labelled": n_lab,
        "accuracy_fp32": acc32,
        "accuracy_int8": acc8,
        "top1_agreement_with_fp32": float(np.mean(P32.argmax(1) == P8.argmax(1))),
        "max_abs_diff_probabilities_vs_fp32": float(np.abs(P32 - P8).max()),
        "energy_int8": np.concatenate(e8),
    }


def accuracy_loss_verdict(
    accuracy_fp32: float | None, accuracy_int8: float | None, max_loss: float
) -> tuple[float | None, bool]:
    """(loss in accuracy points, accepted?). Without labelled images nothing can be accepted.

    Raises:
        ExportError: for a bound outside [0, 1].
    """
    if not 0.0 <= max_loss <= 1.0:
        raise ExportError(
            f"max accuracy loss must be a fraction in [0, 1], got {max_loss}",
            fix="e.g. 0.005 for half an accuracy point",
        )
    if accuracy_fp32 is None or accuracy_int8 is None:
        return None, False
    loss = accuracy_fp32 - accuracy_int8
    return 100.0 * loss, loss <= max_loss + 1e-12


def build_report(
    measured: dict[str, Any],
    *,
    calibration_images: int,
    kept_in_float: dict[str, int],
    max_loss: float,
    recipe: Int8Recipe = Int8Recipe(),
) -> QuantizationReport:
    """Assemble the report (and the int8 OOD threshold) from :func:`compare_int8` output."""
    loss_points, accepted = accuracy_loss_verdict(
        measured["accuracy_fp32"], measured["accuracy_int8"], max_loss
    )
    energy = measured["energy_int8"]
    return QuantizationReport(
        format="QDQ",
        activation_type=recipe.describe(),
        weight_type=recipe.describe_weights(),
        per_channel=True,
        calibration_split="train",
        calibration_images=calibration_images,
        validation_images=measured["validation_images"],
        n_labelled=measured["n_labelled"],
        accuracy_fp32=measured["accuracy_fp32"],
        accuracy_int8=measured["accuracy_int8"],
        accuracy_loss_points=loss_points,
        max_accuracy_loss_points=100.0 * max_loss,
        top1_agreement_with_fp32=measured["top1_agreement_with_fp32"],
        max_abs_diff_probabilities_vs_fp32=measured["max_abs_diff_probabilities_vs_fp32"],
        excluded_head_nodes=kept_in_float.get("head", 0),
        float_stem_nodes=kept_in_float.get("stem", 0),
        float_metadata_nodes=kept_in_float.get("metadata", 0),
        float_depthwise_nodes=kept_in_float.get("depthwise", 0),
        float_first_conv_nodes=kept_in_float.get("first_convs", 0),
        accepted=accepted,
        ood_threshold_int8=fit_ood_threshold(energy) if len(energy) else None,
    )
