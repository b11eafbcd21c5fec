"""Prove the export: onnxruntime and PyTorch agree on real validation images.

The images go through the predictor's own decode and preprocessing, so the
check covers the clinic path end to end, not just the graph. The same pass
collects the energy scores that fit the out-of-distribution threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from skinml.export.errors import ExportVerificationError
from skinml.export.images import SplitImages, iter_feeds
from skinml.modelfile.metadata import Preprocessing
from skinml.predict.scores import energy_score
from skinml.vocabulary import LabelSpace

#: Largest allowed |p_onnx - p_torch| over all images and classes.
PROBABILITY_TOLERANCE = 1e-4
#: Top-1 disagreements where the two leading torch probabilities are closer than
#: this are numerical ties, reported but not failures.
TIE_MARGIN = 1e-6


@dataclass
class VerificationReport:
    """What the onnxruntime-vs-PyTorch comparison measured on validation images."""

    split: str
    n_images: int
    n_unreadable: int
    max_abs_diff_probabilities: float
    max_abs_diff_logits: float
    max_abs_diff_cam: float | None
    top1_disagreements: int
    top1_ties: int
    tolerance: float
    accuracy_onnx: float | None
    n_labelled: int
    energy: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    probabilities: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    labels: list[str] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return self.max_abs_diff_probabilities <= self.tolerance and self.top1_disagreements == 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (arrays dropped)."""
        d = asdict(self)
        for k in ("energy", "probabilities", "labels"):
            d.pop(k)
        d["passed"] = self.passed
        return d


def accuracy(probabilities: np.ndarray, labels: list[str], classes: tuple[str, ...]):
    """Top-1 accuracy over the images whose label is one of ``classes`` (None if there are none).

    Labels are matched through the diagnosis vocabulary, so a manifest's
    ``Melanoma`` counts as the model's ``mel`` instead of being left out.
    """
    index = {c: i for i, c in enumerate(classes)}
    as_class, _ = LabelSpace(classes, name="the model's classes").mapping(labels)
    keep = [i for i, lab in enumerate(labels) if lab in as_class]
    if not keep or probabilities.size == 0:
        return None, 0
    y = np.array([index[as_class[labels[i]]] for i in keep])
    pred = probabilities[keep].argmax(axis=1)
    return float(np.mean(pred == y)), len(keep)


def verify_against_torch(
    wrapper: Any,
    session: Any,
    images: SplitImages,
    prep: Preprocessing,
    classes: tuple[str, ...],
    *,
    tolerance: float = PROBABILITY_TOLERANCE,
    batch_size: int = 32,
    raise_on_failure: bool = True,
) -> VerificationReport:
    """Run both models on the same preprocessed validation batches and compare outputs.

    Raises:
        ExportVerificationError: when probabilities differ by more than ``tolerance`` or
            the top class differs on any image (beyond numerical ties), with the numbers.
    """
    import torch

    wrapper = wrapper.eval()
    names = [o.name for o in session.get_outputs()]
    d_prob = d_logit = 0.0
    d_cam: float | None = None
    disagree = ties = n = 0
    energies, probs_all, labels_all = [], [], []
    worst_file = ""
    input_names = getattr(wrapper, "input_names", ("image",))
    for feeds, labels, paths in iter_feeds(images, prep, batch_size):
        x = feeds["image"]
        with torch.no_grad():
            t_out = [t.numpy() for t in wrapper(*(torch.from_numpy(feeds[k]) for k in input_names))]
        o_out = dict(zip(names, session.run(None, feeds), strict=True))
        t_logits, t_probs = t_out[0], t_out[1]
        diff = np.abs(o_out["probabilities"] - t_probs)
        if diff.max() > d_prob:
            d_prob = float(diff.max())
            worst_file = str(paths[int(diff.max(axis=1).argmax())])
        d_logit = max(d_logit, float(np.abs(o_out["logits"] - t_logits).max()))
        if len(t_out) > 2 and "cam" in o_out:
            d_cam = max(d_cam or 0.0, float(np.abs(o_out["cam"] - t_out[2]).max()))
        t_top, o_top = t_probs.argmax(axis=1), o_out["probabilities"].argmax(axis=1)
        for i in np.flatnonzero(t_top != o_top):
            margin = abs(float(t_probs[i, t_top[i]] - t_probs[i, o_top[i]]))
            if margin < TIE_MARGIN:
                ties += 1
            else:
                disagree += 1
        energies.append(energy_score(o_out["logits"]))
        probs_all.append(o_out["probabilities"])
        labels_all.extend(labels)
        n += len(x)
    probs = np.concatenate(probs_all)
    acc, n_lab = accuracy(probs, labels_all, classes)
    report = VerificationReport(
        split=images.split,
        n_images=n,
        n_unreadable=len(images.paths) - n,
        max_abs_diff_probabilities=d_prob,
        max_abs_diff_logits=d_logit,
        max_abs_diff_cam=d_cam,
        top1_disagreements=disagree,
        top1_ties=ties,
        tolerance=tolerance,
        accuracy_onnx=acc,
        n_labelled=n_lab,
        energy=np.concatenate(energies),
        probabilities=probs,
        labels=labels_all,
    )
    if raise_on_failure and not report.passed:
        raise ExportVerificationError(
            f"onnxruntime disagrees with PyTorch on {n} {images.split!r} images: max |Δp| = "
            f"{d_prob:.3g} (tolerance {tolerance:g}, worst image {worst_file}), max |Δlogit| = "
            f"{d_logit:.3g}, top class differs on {disagree} images",
            file=images.manifest,
            fix="the model file was NOT written. Try another --opset, the legacy exporter, or "
            "report the architecture; do not hand out an unverified model",
        )
    return report
