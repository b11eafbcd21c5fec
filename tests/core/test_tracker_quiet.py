"""Logging a manifest as an MLflow dataset prints nothing a user must read past."""

from __future__ import annotations

import warnings

import pandas as pd

from skinml.tracking.mlflow_tracker import MlflowTracker


def test_a_manifest_with_integer_columns_logs_without_warnings(tmp_path):
    frame = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "label": ["mel", "nv"], "age": [40, 55]})
    tracker = MlflowTracker(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with tracker.start(run_name="quiet"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker.log_dataset(
            frame, name="train", fingerprint="sha256:" + "ab" * 32, context="training"
        )
    assert not [w for w in caught if "Inferred schema" in str(w.message)]
