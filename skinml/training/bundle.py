"""The trained-model bundle: what ``skinml-train`` hands to ``skinml-export``.

One ``torch.save`` file holding the architecture (timm name + kwargs), the
weights, the metadata document as far as training knows it (classes,
preprocessing, calibration, thresholds, metrics, provenance) and the path of
the split manifest, so that export can verify on real validation images and
calibrate quantization on training images.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from skinml.errors import ModelFileError
from skinml.modelfile.metadata import ModelMetadata

BUNDLE_FILE = "model_bundle.pt"
BUNDLE_FORMAT = 1


@dataclass
class ModelBundle:
    """A trained classifier and everything needed to export and use it.

    Attributes:
        architecture: timm model name.
        model_kwargs: keyword arguments for ``skinml.models.create_classifier``
            (``num_classes``, ``drop_rate``, and ``metadata_features``/``metadata_hidden``
            for a metadata-fusion model; never ``pretrained``).
        state_dict: the weights (on CPU).
        metadata: the model-file document; ``inputs``/``outputs`` are filled by export.
        split_manifest: CSV of the manifest with the ``split`` column used in training
            (image paths relative to the CSV).
    """

    architecture: str
    model_kwargs: dict[str, Any]
    state_dict: dict[str, Any]
    metadata: ModelMetadata
    split_manifest: str

    def build_model(self):
        """Instantiate the network and load the weights (eval mode)."""
        from skinml.models.factory import create_classifier

        model = create_classifier(self.architecture, pretrained=False, **self.model_kwargs)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def save(self, path: str | PathLike[str]) -> Path:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": BUNDLE_FORMAT,
                "architecture": self.architecture,
                "model_kwargs": self.model_kwargs,
                "state_dict": self.state_dict,
                "metadata_json": self.metadata.to_json(),
                "split_manifest": self.split_manifest,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | PathLike[str]) -> ModelBundle:
        """Load a bundle file (or the bundle inside a run directory)."""
        import torch

        path = Path(path)
        if path.is_dir():
            path = path / BUNDLE_FILE
        if not path.is_file():
            raise ModelFileError(
                "no model bundle found",
                file=path,
                fix=f"pass the run directory of skinml-train (it contains {BUNDLE_FILE})",
            )
        try:
            raw = torch.load(path, map_location="cpu", weights_only=False)
        except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError) as exc:
            # torch.load reports a text file or a truncated download as a pickle error.
            raise ModelFileError(
                f"not a readable model bundle ({type(exc).__name__}: {exc})",
                file=path,
                expected=f"{BUNDLE_FILE} as written by skinml-train",
                fix="pass the run directory of skinml-train, or copy the bundle again",
            ) from exc
        if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
            raise ModelFileError(
                "not a skinml model bundle (or an unsupported bundle format)",
                file=path,
                expected=f"a file written by skinml-train, format {BUNDLE_FORMAT}",
            )
        return cls(
            architecture=raw["architecture"],
            model_kwargs=dict(raw["model_kwargs"]),
            state_dict=raw["state_dict"],
            metadata=ModelMetadata.from_json(raw["metadata_json"], source=str(path)),
            split_manifest=raw["split_manifest"],
        )


def bundle_from_run(
    cfg: Any,
    model: Any,
    prep: Any,
    data: Any,
    evaluation: dict[str, Any],
    run_id: str | None,
    version: str,
    commit: str | None,
    packages: dict[str, str],
    created: str,
    resolved: dict[str, Any],
    *,
    metadata_input: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> ModelBundle:
    """The bundle of a finished run: weights plus the metadata document training knows.

    ``metadata_input`` is the fitted patient-metadata encoding
    (:meth:`~skinml.modelfile.metadata_input.MetadataEncoding.to_dict`) of a fusion model;
    it is stored as ``metadata.extra["metadata_input"]`` and travels into the model file.
    ``training`` (best epoch from 1, epochs run, monitor) becomes ``extra["training"]``;
    ``evaluation["warnings"]`` becomes ``metadata.warnings``, which the model card and
    skinml-predict repeat.
    """
    from skinml.modelfile.metadata import (
        Calibration,
        ModelMetadata,
        OperatingThreshold,
        Provenance,
    )
    from skinml.models.factory import backbone_provenance

    metrics = {**evaluation["val"].model_metrics(), **evaluation["test"].model_metrics()}
    thresholds = ()
    picker = evaluation["threshold"]
    if picker is not None:
        thresholds = (
            OperatingThreshold(
                name="malignant",
                threshold=float(picker.threshold_),
                rule=picker.rule_,
                chosen_on="validation",
                validation_sensitivity=float(picker.sensitivity_),
                validation_specificity=float(picker.specificity_),
            ),
        )
    meta = ModelMetadata(
        task="image_classification",
        classes=tuple(data.classes),
        malignant=tuple(data.malignant),
        provenance=Provenance(
            skinml_version=version,
            created_utc=created,
            git_commit=commit,
            data_fingerprint=data.fingerprint,
            dataset=data.manifest.name,
            mlflow_run_id=run_id,
            training_config=resolved,
            package_versions=packages,
        ),
        inputs={},
        outputs={},
        preprocessing=prep,
        calibration=Calibration(
            method="temperature",
            temperature=float(evaluation["scaler"].temperature_),
            fitted_on="validation",
            ece_before=evaluation["ece_before"],
            ece_after=evaluation["ece_after"],
            tta_views=tuple(evaluation["tta_views"]),
        ),
        thresholds=thresholds,
        metrics=metrics,
        intended_use=str(cfg.export.intended_use),
        limitations=str(cfg.export.limitations),
        warnings=tuple(evaluation.get("warnings", ())),
        extra={
            "backbone": backbone_provenance(**model_config(cfg.model)),
            **({} if metadata_input is None else {"metadata_input": metadata_input}),
            **({} if training is None else {"training": training}),
        },
    )
    model_kwargs = {"num_classes": len(data.classes), "drop_rate": float(cfg.model.drop_rate)}
    if hasattr(model, "fusion_kwargs"):
        model_kwargs.update(model.fusion_kwargs())
    return ModelBundle(
        architecture=str(cfg.model.name),
        model_kwargs=model_kwargs,
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
        metadata=meta,
        split_manifest=str(data.split_manifest_path.resolve()),
    )


def model_config(model_cfg: Any) -> dict[str, Any]:
    """A model config as plain keyword arguments (no Hydra ``_target_``/``_partial_`` keys)."""
    from omegaconf import DictConfig, OmegaConf

    raw = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if isinstance(model_cfg, DictConfig)
        else dict(model_cfg)
    )
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def run_provenance(run_dir: str | PathLike[str]) -> dict[str, Any]:
    """Where a finished ``skinml-train`` run came from: its commit, data and command.

    Read from the run's model bundle (git commit, data fingerprint, dataset, package
    versions at training time) and Hydra's ``.hydra/overrides.yaml`` (the overrides the
    run was started with), so a summary of the run can say how to reproduce it.
    """
    run_dir = Path(run_dir)
    prov = ModelBundle.load(run_dir).metadata.provenance
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    overrides: list[str] = []
    if overrides_file.is_file():
        import yaml

        overrides = [str(o) for o in yaml.safe_load(overrides_file.read_text()) or []]
    return {
        "git_commit": prov.git_commit,
        "data_fingerprint": prov.data_fingerprint,
        "dataset": prov.dataset,
        "mlflow_run_id": prov.mlflow_run_id,
        "created_utc": prov.created_utc,
        "packages": prov.package_versions,
        "command": " ".join(["skinml-train", *overrides]),
    }
