"""Experiment tracking (MLflow) and run provenance (git commit, package versions, config)."""

from skinml.tracking.mlflow_tracker import MlflowTracker, flatten_config
from skinml.tracking.provenance import git_commit, package_versions, provenance_record

__all__ = ["MlflowTracker", "flatten_config", "git_commit", "package_versions", "provenance_record"]
