"""A thin MLflow wrapper with skinml's defaults: sqlite store, provenance, flat params.

MLflow 3 refuses a bare folder store, so the default is ``sqlite:///mlflow.db``
with artifacts in ``mlartifacts/`` beside it; a tracking-server URI works too.

Per-epoch curves and final figures never share a key. MLflow shows a metric's
latest value (highest step) in the run table and in run comparisons, so a final
``val_accuracy`` logged beside a per-epoch ``val_accuracy`` curve would show the
last epoch's figure, not the selected model's, and put a spike in the curve.
Curves therefore go under ``epoch/`` (``epoch/val_balanced_accuracy``, step =
epoch counted from 1) and final figures under plain names (``test_macro_auc``,
``val_balanced_accuracy`` of the selected model). Confidence intervals go into
a table artifact (:meth:`MlflowTracker.log_table`), not into metric keys.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skinml.tracking.provenance import provenance_record

_MAX_PARAM_LEN = 6000  # MLflow's limit for a param value is 6000 characters
_MAX_DIGEST_LEN = 36  # MLflow's limit for a dataset digest
#: prefix of per-epoch curves; final figures never carry it
EPOCH_PREFIX = "epoch/"
#: the tag MLflow shows as a run's description
DESCRIPTION_TAG = "mlflow.note.content"


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


def _finite(metrics: Mapping[str, float | None]) -> dict[str, float]:
    import math

    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


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
        self._final_keys: set[str] = set()

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
        """Log final figures (one value per key); per-epoch curves use :meth:`log_epoch`.

        Raises:
            ValueError: a key is logged twice or carries the ``epoch/`` prefix, which
                would give a final figure a history (the run table would show its last one).
        """
        clean = _finite(metrics)
        clash = sorted(k for k in clean if k.startswith(EPOCH_PREFIX) or k in self._final_keys)
        if clash:
            raise ValueError(
                f"final metrics {clash} were already logged or are per-epoch curve keys; "
                "log each final figure once, and curves with log_epoch()"
            )
        self._final_keys.update(clean)
        self._log(clean, step)

    def log_epoch(self, metrics: Mapping[str, float], epoch: int) -> None:
        """Log one epoch's figures as curves: ``epoch/<name>`` at step ``epoch`` (from 1)."""
        self._log({f"{EPOCH_PREFIX}{k}": v for k, v in _finite(metrics).items()}, epoch)

    @staticmethod
    def _log(metrics: dict[str, float], step: int | None) -> None:
        import mlflow

        if metrics:
            mlflow.log_metrics(metrics, step=step)

    def log_table(self, frame: Any, artifact_file: str) -> None:
        """A table artifact (``mlflow.log_table``), e.g. metrics with their 95% CIs."""
        import mlflow

        mlflow.log_table(data=frame, artifact_file=artifact_file)

    def log_dataset(
        self,
        frame: Any,
        *,
        name: str,
        fingerprint: str,
        context: str,
        source: str | None = None,
        targets: str | None = None,
    ) -> None:
        """Log a manifest as an MLflow dataset input (``mlflow.data.from_pandas``).

        The digest is the start of the data fingerprint (MLflow stores at most 36
        characters); the whole fingerprint goes into the input's tags. A local ``source``
        path is wrapped in ``LocalArtifactDatasetSource`` explicitly: as a bare string MLflow
        warns that it is ambiguous with itself (mlflow/mlflow#9702).
        """
        import mlflow
        import mlflow.data
        from mlflow.data.sources import LocalArtifactDatasetSource

        with warnings.catch_warnings():
            # schema inference hints that integer columns (e.g. age) cannot hold missing
            # values: true of any table, useless to a user reading the training console
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = mlflow.data.from_pandas(
                frame,
                source=None if source is None else LocalArtifactDatasetSource(source),
                targets=targets,
                name=name,
                digest=fingerprint.removeprefix("sha256:")[:_MAX_DIGEST_LEN],
            )
            mlflow.log_input(dataset, context=context, tags={"data_fingerprint": fingerprint})

    def set_description(self, text: str) -> None:
        """The run's description in the MLflow UI (the ``mlflow.note.content`` tag)."""
        self.set_tags({DESCRIPTION_TAG: text})

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
