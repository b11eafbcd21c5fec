"""What ``--tta`` does for a given model file: never a second, different augmentation.

The model file's calibration and thresholds were fitted on one kind of logits: single
views, or the average of flip views' logits (``calibration.tta_views``). The predictor
must compute exactly that kind, so ``--tta`` is decided per file:

- views built into the graph (schema 1.2, trained with TTA): the default already
  reproduces the run; ``--tta`` changes nothing and says so (flipping again would
  average averages, which nothing was fitted on);
- fitted on single views (schema 1.2 without TTA, or an older file whose training
  config says ``trainer.tta: false``): ``--tta`` is refused, because flip-averaged logits
  are less extreme than single-view ones and the stored temperature, malignancy
  threshold and OOD threshold would no longer mean what the model card reports;
- an older file (schema 1.0/1.1) whose run used TTA: its graph has none, so ``--tta`` runs
  the views and averages their *logits* before the stored temperature, as training did;
  without ``--tta`` the output stays what it always was, with a note;
- nothing recorded (a hand-made file): ``--tta`` averages logits, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

from skinml.errors import ConfigError
from skinml.modelfile import ModelMetadata
from skinml.modelfile.tta import TTA_VIEWS, calibration_tta_views, flip_axes


@dataclass(frozen=True)
class TtaPlan:
    """How the predictor gets the logits the calibration was fitted on.

    Attributes:
        in_graph: views the graph averages itself.
        views: views the predictor runs and averages as logits, before ``temperature``
            (empty: one run, the graph's own probabilities).
        temperature: the graph's temperature, for probabilities of averaged logits.
        note: what the user should be told (None: nothing to say).
    """

    in_graph: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    temperature: float = 1.0
    note: str | None = None

    @property
    def axes(self) -> list[tuple[int, ...]]:
        """Flip axes of :attr:`views` on an NCHW batch."""
        return [flip_axes(v) for v in self.views]


def plan_tta(
    metadata: ModelMetadata, requested: bool, *, source: str | PathLike[str] = "model file"
) -> TtaPlan:
    """Decide what the predictor does for this file, with or without ``--tta``.

    Raises:
        ConfigError: ``--tta`` for a model whose calibration was fitted on single views.
    """
    cal = metadata.calibration
    temperature = float(cal.temperature) if cal.applied_in_graph else 1.0
    if cal.tta_views and cal.applied_in_graph:
        note = None
        if requested:
            note = (
                f"note: {source} already averages the flip views {', '.join(cal.tta_views)} in "
                "its graph, as its calibration and thresholds were fitted; --tta changes nothing"
            )
        return TtaPlan(in_graph=tuple(cal.tta_views), temperature=temperature, note=note)
    fitted = calibration_tta_views(metadata)
    if fitted == ():
        if requested:
            raise ConfigError(
                "--tta is not available for this model: its calibration (temperature) and "
                "malignancy threshold were fitted on single-view predictions, and averaging "
                "flip views would change the probabilities they describe",
                file=source,
                fix="drop --tta; for test-time augmentation, train with trainer.tta=true and "
                "export again (the views are then part of the model file)",
            )
        return TtaPlan(temperature=temperature)
    views = tuple(fitted or TTA_VIEWS)
    if not requested:
        if fitted is None:
            return TtaPlan(temperature=temperature)
        return TtaPlan(
            temperature=temperature,
            note=(
                f"note: the calibration and thresholds of {source} were fitted on the average "
                f"logits of the flip views {', '.join(views)}, which this older file does not "
                "compute in its graph: add --tta to reproduce the training run, or re-export "
                "the run with skinml-export"
            ),
        )
    if fitted is None:
        note = (
            f"note: {source} does not record how its calibration was fitted; --tta averages "
            f"the logits of the flip views {', '.join(views)} before its temperature"
        )
    else:
        note = (
            f"note: --tta averages the logits of the flip views {', '.join(views)} before the "
            f"temperature, as the training run of {source} did; this older file's OOD "
            "threshold was fitted on single views, so ood_flag is approximate (re-export "
            "the run with skinml-export to build the views into the graph)"
        )
    return TtaPlan(views=views, temperature=temperature, note=note)
