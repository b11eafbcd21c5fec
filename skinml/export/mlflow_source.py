"""Fetch a trained bundle from an MLflow run (artifact ``bundle/model_bundle.pt``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from skinml.export.errors import ExportError

BUNDLE_ARTIFACT = "bundle/model_bundle.pt"


def download_bundle(
    run_id: str, *, tracking_uri: str | None = None, dst: str | Path | None = None
) -> Path:
    """Download the run's bundle artifact and return the local file.

    Raises:
        ExportError: when the run or its artifact cannot be found.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="skinml-mlflow-"))
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=BUNDLE_ARTIFACT,
            tracking_uri=tracking_uri,
            dst_path=str(dst),
        )
    except (MlflowException, OSError) as exc:
        raise ExportError(
            f"cannot download {BUNDLE_ARTIFACT!r} from MLflow run {run_id!r}: {exc}",
            fix="check the run id and --tracking-uri (e.g. sqlite:///mlflow.db), and that the "
            "run was made by skinml-train (it logs the bundle artifact)",
        ) from exc
    return Path(local)
