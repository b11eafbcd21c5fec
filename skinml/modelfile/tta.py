"""Test-time augmentation (TTA): one vocabulary for training, the exported graph and the predictor.

A view is a flip of the NCHW input. Training averages the views' *logits*, then fits the
temperature and the operating thresholds on those averages; ``calibration.tta_views`` in
the model file records which views, and a file exported with views averages them inside
its graph the same way. Everything that applies or describes TTA reads the views from
here, so training, export and prediction cannot drift apart again.

Torch-free on purpose: the clinician's predictor imports it. The axes work for
``numpy.flip(x, axis=...)`` and ``torch.Tensor.flip(dims)`` alike.
"""

from __future__ import annotations

from typing import Any

from skinml.errors import ModelFileError

#: Flip axes of each view on an NCHW tensor (dermoscopy has no canonical orientation).
VIEW_AXES: dict[str, tuple[int, ...]] = {
    "identity": (),
    "hflip": (-1,),
    "vflip": (-2,),
    "hflip_vflip": (-2, -1),
}
#: The views ``trainer.tta=true`` uses (the only TTA skinml has ever trained with).
TTA_VIEWS: tuple[str, ...] = ("identity", "hflip", "vflip", "hflip_vflip")


def flip_axes(view: str) -> tuple[int, ...]:
    """The axes a view flips (empty for ``identity``).

    Raises:
        ModelFileError: for a view name this skinml does not know.
    """
    try:
        return VIEW_AXES[view]
    except KeyError:
        raise ModelFileError(
            f"unknown test-time augmentation view {view!r}",
            expected=f"views among {list(VIEW_AXES)}",
            fix="the file was written by a newer skinml; upgrade skinml",
        ) from None


def calibration_tta_views(metadata: Any) -> tuple[str, ...] | None:
    """The views whose averaged logits the temperature and thresholds were fitted on.

    Files from schema 1.2 record them in ``calibration.tta_views`` (empty: single view).
    Older files do not; their ``provenance.training_config`` still says whether the run
    used ``trainer.tta``, which has always meant :data:`TTA_VIEWS`.

    Returns:
        The views, ``()`` for no TTA, or None when nothing records it (a hand-made file).
    """
    recorded = metadata.calibration.tta_views
    if recorded is not None:
        return tuple(recorded)
    trainer = (metadata.provenance.training_config or {}).get("trainer")
    used = trainer.get("tta") if isinstance(trainer, dict) else None
    if isinstance(used, bool):
        return TTA_VIEWS if used else ()
    return None


def describe_tta(metadata: Any) -> str:
    """One sentence for the model card and ``skinml-predict --describe``."""
    cal = metadata.calibration
    views = calibration_tta_views(metadata)
    if cal.tta_views:
        where = "inside the graph" if cal.applied_in_graph else "before calibration"
        return (
            f"flip views {', '.join(cal.tta_views)}: their logits are averaged {where}, before "
            "the temperature, exactly as in training, where the calibration and thresholds "
            "were fitted on these averaged logits; skinml-predict needs no option for it"
        )
    if cal.tta_views is not None:
        return (
            "none: calibration and thresholds were fitted on single-view predictions, so "
            "skinml-predict refuses --tta for this model"
        )
    if views:
        return (
            "not built into this file (written before schema 1.2), but its training run averaged "
            f"the logits of the flip views {', '.join(views)} before fitting the calibration "
            "and thresholds: skinml-predict --tta reproduces that; re-exporting the run builds "
            "it into the graph"
        )
    if views == ():
        return (
            "none: its training run used none (file written before schema 1.2), so "
            "skinml-predict refuses --tta for this model"
        )
    return "not recorded (file written before schema 1.2)"
