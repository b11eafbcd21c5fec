"""A thin MLflow wrapper with skinml's defaults: sqlite store, provenance, flat params.

MLflow 3 refuses a bare folder store, so the default is ``sqlite:///mlflow.db``
with artifacts in ``mlartifacts/`` beside it; a tracking-server URI works too.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skinml.tracking.provenance import provenance_record

_MAX_PARAM_LEN = 6000  # MLflow's limit for a param value is 6000 characters


def flatten_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested config into ``{"a.b.c": "value"}`` for MLflow params (pure)."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_config(value, prefix=f"{name}."))
        else:
            text = json.dumps(value) if isinstance(value, list | tuple) else str(value)
            out[name] = text[:_MAX_PARAM_LEN]
    return out


class MlflowTracker:
    """Logs one run: params, metrics per step, figures, files, provenance and models.

    Args:
        tracking_uri: ``sqlite:///path/mlflow.db`` (default store) or a server URL.
        experiment: experiment name (created on first use).
        run_name: optional run name.
        log_model: also log the model with ``mlflow.pytorch`` / ``mlflow.lightgbm``.
    """

    def __init__(
        self,
        tracking_uri: str = "sqlite:///mlflow.db",
        experiment: str = "skinml",
        run_name: str | None = None,
        log_model: bool = True,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.log_model = log_model
        self.run_id: str | None = None

    def _artifact_location(self) -> str | None:
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            return (db.parent / "mlartifacts" / self.experiment).resolve().as_uri()
        return None

    @contextmanager
    def start(
        self,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> Iterator[MlflowTracker]:
        """Open the run (creating the sqlite folder and experiment if needed).

        Passing ``run_id`` reopens an existing run, so a resumed training keeps
        one MLflow run with a continuous metric history.
        """
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mlflow.set_tracking_uri(self.tracking_uri)
        if mlflow.get_experiment_by_name(self.experiment) is None:
            mlflow.create_experiment(self.experiment, artifact_location=self._artifact_location())
        mlflow.set_experiment(self.experiment)
        kwargs = {"run_id": run_id} if run_id else {"run_name": run_name or self.run_name}
        with mlflow.start_run(tags=dict(tags or {}), **kwargs) as run:
            self.run_id = run.info.run_id
            yield self

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        flat = flatten_config(params)
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow batches at most 100 params per call
            mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import math

        import mlflow

        clean = {
            k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))
        }
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_figure(self, fig: Any, artifact_file: str) -> None:
        import matplotlib.pyplot as plt
        import mlflow

        mlflow.log_figure(fig, artifact_file)
        plt.close(fig)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        p = Path(path)
        if p.is_dir():
            mlflow.log_artifacts(str(p), artifact_path=artifact_path)
        else:
            mlflow.log_artifact(str(p), artifact_path=artifact_path)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        import mlflow

        mlflow.log_dict(dict(data), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        import mlflow

        mlflow.log_text(text, artifact_file)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_provenance(self, resolved_config_yaml: str | None = None) -> dict[str, object]:
        """Log git commit, package versions and the resolved config; returns the record."""
        record = provenance_record()
        self.set_tags({"git_commit": record["git_commit"] or "unknown"})
        self.log_dict(record, "provenance.json")
        if resolved_config_yaml is not None:
            self.log_text(resolved_config_yaml, "config/resolved_config.yaml")
        return record

    def log_torch_model(self, model: Any, input_example: Any, name: str = "model") -> None:
        """Log a PyTorch model; ``input_example`` is required by MLflow 3 for a signature."""
        import mlflow.pytorch

        with tempfile.TemporaryDirectory():
            mlflow.pytorch.log_model(
                model,
                name=name,
                input_example=input_example,
                pip_requirements=["torch", "timm"],
            )
