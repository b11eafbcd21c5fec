"""Frozen dataclasses for everything a model file must carry to be used correctly.

Meaning travels with the model (timm's ``pretrained_cfg`` idea): classes, which
are malignant, preprocessing, calibration, operating thresholds and how they
were chosen, metrics with confidence intervals, and provenance. The same
document serves image classifiers (task ``image_classification``) and tabular
risk models (task ``tabular_risk``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from skinml.errors import ModelFileError
from skinml.modelfile.tta import VIEW_AXES

METADATA_KEY = "skinml"
#: 1.1 added ``MetricWithCI.interval/numerator/denominator`` (Wilson intervals for
#: proportions) and ``ModelMetadata.warnings``; 1.0 files still read (bootstrap
#: intervals, no warnings). 1.2 added ``Calibration.tta_views``; older files still read
#: (``tta_views`` None: not recorded). 1.3 added ``Preprocessing.decode_min_side``
#: (reduced-scale JPEG decoding); older files decode every pixel, as they were trained.
SCHEMA_VERSION = "1.3"
SUPPORTED_SCHEMA_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
TASKS = ("image_classification", "tabular_risk")


@dataclass(frozen=True)
class Preprocessing:
    """How to turn an image file into the network input (mirrors the training transform).

    ``resize``: ``"resize_shorter_center_crop"`` (resize the shorter side to
    ``input_size / crop_pct`` then centre-crop) or ``"resize"`` (squash to
    ``input_size`` without keeping the aspect ratio).

    ``decode_min_side``: JPEGs are decoded at the largest DCT reduction (1/2, 1/4, 1/8)
    that keeps the shorter side at least this long (and the longer side at least 256 px,
    the quality measures' working copy), then resized as above
    (:func:`skinml.imaging.read.decode_image`); None decodes every pixel (files before
    schema 1.3, and a training run that asked for it). Training used the same value.
    """

    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "resize"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    colour_mode: str = "RGB"
    layout: str = "NCHW"
    scale: float = 1.0 / 255.0
    decode_min_side: int | None = None


def describe_decode(prep: Preprocessing) -> str:
    """The decode policy in words, for the model card and ``skinml-predict --describe``."""
    if prep.decode_min_side is None:
        return "every pixel decoded (exact), as in training"
    return (
        f"JPEGs decoded at reduced DCT scale (1/2, 1/4 or 1/8) keeping the shorter side "
        f">= {prep.decode_min_side} px and the longer >= 256 px, as in training; other "
        "formats decoded exactly"
    )


@dataclass(frozen=True)
class Calibration:
    """Post-hoc calibration applied to logits (or scores) before reporting probabilities.

    ``tta_views``: the test-time augmentation views (:mod:`skinml.modelfile.tta`) whose
    logits were averaged before the temperature and thresholds were fitted; ``()`` for
    single-view predictions, None when not recorded (files before schema 1.2). A file
    exported with views averages them in its graph, so its outputs mean what the fitted
    calibration and thresholds assume.
    """

    method: str = "temperature"  # temperature | platt | isotonic | none
    temperature: float = 1.0
    fitted_on: str = "validation"
    ece_before: float | None = None
    ece_after: float | None = None
    applied_in_graph: bool = False  # True when the ONNX output already includes it
    tta_views: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OperatingThreshold:
    """A decision threshold and the rule that chose it (on validation, never test)."""

    name: str  # e.g. "malignant"
    threshold: float
    rule: str  # e.g. "sensitivity >= 0.95 on validation"
    chosen_on: str = "validation"
    validation_sensitivity: float | None = None
    validation_specificity: float | None = None


@dataclass(frozen=True)
class MetricWithCI:
    """A metric with its 95% interval and what it was measured on.

    ``interval`` says how the interval was computed: ``"percentile bootstrap"`` (AUC,
    balanced accuracy), ``"bias-corrected basic bootstrap"`` (ECE, whose estimate is
    then bias-corrected too), ``"wilson"`` for a proportion, or
    ``"wilson+cluster_bootstrap"`` when patients' clustered images widened it. A
    proportion also carries its ``numerator``/``denominator`` (e.g. 8 of 8 malignant
    cases flagged), so readers see how few cases stand behind it; ``n`` is the split size.
    """

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    split: str = "test"
    n: int | None = None
    n_bootstrap: int | None = None
    seed: int | None = None
    interval: str = "percentile bootstrap"
    numerator: int | None = None
    denominator: int | None = None


@dataclass(frozen=True)
class Provenance:
    """Where the model came from: enough to reproduce or audit it."""

    skinml_version: str
    created_utc: str
    git_commit: str | None = None
    data_fingerprint: str | None = None
    dataset: str | None = None
    mlflow_run_id: str | None = None
    training_config: dict[str, Any] = field(default_factory=dict)
    package_versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelMetadata:
    """The one JSON document every skinml ONNX file carries under ``metadata_props['skinml']``.

    Attributes:
        task: ``image_classification`` or ``tabular_risk``.
        classes: output order of the probability vector.
        malignant: the subset of ``classes`` that counts as malignant (images) or
            the positive class (risk models).
        inputs / outputs: graph tensor names mapped to a description, so nobody
            has to guess what ``output_0`` means.
        warnings: plain-language warnings about the model's test figures (e.g. "not
            better than chance on this test set: AUC 0.59, 95% CI 0.41-0.77"), written
            by training and repeated by the model card and skinml-predict.
        extra: task-specific fields (e.g. feature names for tabular models, OOD
            score threshold, CAM tensor names, quantization report).
    """

    task: str
    classes: tuple[str, ...]
    malignant: tuple[str, ...]
    provenance: Provenance
    inputs: dict[str, str]
    outputs: dict[str, str]
    preprocessing: Preprocessing | None = None
    calibration: Calibration = field(default_factory=Calibration)
    thresholds: tuple[OperatingThreshold, ...] = ()
    metrics: dict[str, MetricWithCI] = field(default_factory=dict)
    intended_use: str = ""
    limitations: str = ""
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ModelFileError(f"unknown task {self.task!r}", expected=f"one of {TASKS}")
        unknown = set(self.malignant) - set(self.classes)
        if unknown:
            raise ModelFileError(
                f"malignant classes {sorted(unknown)} are not among the classes {self.classes}",
                fix="name malignant classes exactly as in the class list",
            )
        if self.task == "image_classification" and self.preprocessing is None:
            raise ModelFileError(
                "an image model needs its preprocessing (input size, mean, std, resize policy)"
            )

    def threshold(self, name: str) -> OperatingThreshold | None:
        """The operating threshold called ``name``, if the model has one."""
        return next((t for t in self.thresholds if t.name == name), None)

    def to_json(self) -> str:
        """Serialise to the JSON string stored in the model file."""
        return json.dumps(asdict(self), indent=None, sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str, *, source: str = "model file") -> ModelMetadata:
        """Parse and validate the stored JSON document.

        Raises:
            ModelFileError: for malformed JSON, an unsupported schema version or
                missing fields, naming what is missing.
        """
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"skinml metadata is not valid JSON: {exc}", file=source) from exc
        if not isinstance(doc, dict):
            raise ModelFileError(
                f"skinml metadata is a JSON {type(doc).__name__}, not an object",
                file=source,
                expected="one JSON object with task, classes, preprocessing, ...",
                fix="re-export the model with skinml-export",
            )
        version = doc.get("schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise ModelFileError(
                f"unsupported skinml metadata schema version {version!r}",
                file=source,
                expected=f"one of {SUPPORTED_SCHEMA_VERSIONS}",
                fix="upgrade skinml, or re-export the model with this skinml version",
            )
        missing = [f.name for f in fields(cls) if f.name not in doc and _required(f)]
        if missing:
            raise ModelFileError(
                f"skinml metadata lacks required fields {missing}",
                file=source,
                fix="re-export the model with skinml-export",
            )
        _check_shapes(doc, source)
        try:
            return cls(
                task=doc["task"],
                classes=tuple(doc["classes"]),
                malignant=tuple(doc["malignant"]),
                provenance=Provenance(**doc["provenance"]),
                inputs=dict(doc["inputs"]),
                outputs=dict(doc["outputs"]),
                preprocessing=_preprocessing(doc.get("preprocessing")),
                calibration=_calibration(doc.get("calibration", {})),
                thresholds=tuple(OperatingThreshold(**t) for t in doc.get("thresholds", [])),
                metrics={k: MetricWithCI(**v) for k, v in doc.get("metrics", {}).items()},
                intended_use=doc.get("intended_use", ""),
                limitations=doc.get("limitations", ""),
                warnings=tuple(str(w) for w in doc.get("warnings", [])),
                extra=dict(doc.get("extra", {})),
                schema_version=version,
            )
        except (TypeError, KeyError, AttributeError) as exc:
            raise ModelFileError(
                f"skinml metadata has unexpected or missing fields: {exc}",
                file=source,
                fix="re-export the model with skinml-export",
            ) from exc


def warning_line(warning: str) -> str:
    """A ``ModelMetadata.warnings`` entry as a console line: ``WARNING: this model is ...``."""
    subject = "this model is " if warning.startswith("not better than chance") else ""
    return f"WARNING: {subject}{warning}"


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


#: JSON type each top-level field must have (checked before the dataclasses are built).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "task": str,
    "classes": list,
    "malignant": list,
    "provenance": dict,
    "inputs": dict,
    "outputs": dict,
    "preprocessing": (dict, type(None)),
    "calibration": dict,
    "thresholds": list,
    "metrics": dict,
    "warnings": list,
    "extra": dict,
}
#: preprocessing key -> (allowed lengths, smallest allowed value, what to say)
_PREPROCESSING_LISTS: dict[str, tuple[tuple[int, ...], float, str]] = {
    "input_size": ((2,), 1, "[height, width] in pixels"),
    "mean": ((1, 3), float("-inf"), "one number per colour channel"),
    "std": ((1, 3), 1e-12, "one positive number per colour channel"),
}


def _check_shapes(doc: dict[str, Any], source: str) -> None:
    """Name the first field whose JSON type is wrong, instead of failing deep inside."""
    for name, kind in _FIELD_TYPES.items():
        if name in doc and not isinstance(doc[name], kind):
            raise ModelFileError(
                f"skinml metadata field {name!r} is a JSON {type(doc[name]).__name__}",
                file=source,
                expected=f"{name!r} as {_json_kind(kind)}",
                fix="re-export the model with skinml-export",
            )
    if not all(isinstance(c, str) and c for c in doc.get("classes", [])) or not doc.get("classes"):
        raise ModelFileError(
            "skinml metadata 'classes' must be a non-empty list of class names",
            file=source,
            fix="re-export the model with skinml-export",
        )
    _check_tta_views(doc.get("calibration"), source)
    prep = doc.get("preprocessing")
    if isinstance(prep, dict):
        for key, (lengths, low, what) in _PREPROCESSING_LISTS.items():
            value = prep.get(key)
            ok = isinstance(value, list) and len(value) in lengths
            if not ok or not all(isinstance(v, int | float) and v >= low for v in value):
                raise ModelFileError(
                    f"skinml metadata preprocessing.{key} is {value!r}",
                    file=source,
                    expected=what,
                    fix="re-export the model with skinml-export",
                )
        side = prep.get("decode_min_side")
        if side is not None and (isinstance(side, bool) or not isinstance(side, int) or side < 1):
            raise ModelFileError(
                f"skinml metadata preprocessing.decode_min_side is {side!r}",
                file=source,
                expected="a positive whole number of pixels, or null (decode every pixel)",
                fix="re-export the model with skinml-export",
            )


def _check_tta_views(calibration: Any, source: str) -> None:
    """``calibration.tta_views`` is null or a list of known views: a predictor must not guess."""
    views = calibration.get("tta_views") if isinstance(calibration, dict) else None
    if views is None:
        return
    if not isinstance(views, list) or not all(isinstance(v, str) for v in views):
        raise ModelFileError(
            f"skinml metadata calibration.tta_views is {views!r}",
            file=source,
            expected='a list of view names, e.g. ["identity", "hflip"], or null',
            fix="re-export the model with skinml-export",
        )
    unknown = [v for v in views if v not in VIEW_AXES]
    if unknown:
        raise ModelFileError(
            f"skinml metadata calibration.tta_views names unknown views {unknown}",
            file=source,
            expected=f"views among {list(VIEW_AXES)}",
            fix="the file was written by a newer skinml; upgrade skinml",
        )


def _json_kind(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "a list", dict: "an object", type(None): "null"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names[k] for k in kinds)


def _calibration(d: dict[str, Any]) -> Calibration:
    d = dict(d)
    if d.get("tta_views") is not None:
        d["tta_views"] = tuple(d["tta_views"])
    return Calibration(**d)


def _preprocessing(d: dict[str, Any] | None) -> Preprocessing | None:
    if d is None:
        return None
    d = dict(d)
    for key in ("input_size", "mean", "std"):
        d[key] = tuple(d[key])
    return Preprocessing(**d)


def _json_default(obj: Any) -> Any:
    # numpy scalars end up here when metrics come straight from sklearn
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} into model metadata")
