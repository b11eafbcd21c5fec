"""MLflow for a federation: one parent run, per-round server curves, one child run per site.

The parent run holds the resolved config, provenance, the per-round server figures
(``round/...`` at step = round), the final calibrated metrics, the bundle and the ONNX
file. Each site's child run holds only that site's figures as its replies carried them
(``train_loss``, ``val_*``, image counts, final test metrics); no image, file name or
identifier ever reaches the server, so none can reach MLflow.
"""

from __future__ import annotations

from typing import Any

from skinml.federated.rounds import RoundRecord


class FederationTracker:
    """Child runs and round curves around an open :class:`~skinml.tracking.MlflowTracker` run.

    Args:
        parent: the tracker whose run is open (``MlflowTracker.start``).
        child_runs: ``{site: run_id}`` of a resumed federation.
    """

    def __init__(self, parent: Any, child_runs: dict[str, str] | None = None) -> None:
        import mlflow

        self.parent = parent
        self.client = mlflow.MlflowClient(tracking_uri=parent.tracking_uri)
        self.child_runs: dict[str, str] = dict(child_runs or {})

    def child(self, site: str) -> str:
        """The child run of a site (created on first use)."""
        if site not in self.child_runs:
            run = self.client.get_run(self.parent.run_id)
            child = self.client.create_run(
                run.info.experiment_id,
                run_name=f"site-{site}",
                tags={"mlflow.parentRunId": self.parent.run_id, "site": site, "role": "client"},
            )
            self.child_runs[site] = child.info.run_id
        return self.child_runs[site]

    def log_sites(self, counts: list[Any]) -> None:
        """Each site's image counts per split (numbers only) as its child run's params."""
        for c in counts:
            params = {f"n_{split}": sum(v.values()) for split, v in c.counts.items()}
            run_id = self.child(c.site)
            for k, v in params.items():
                self.client.log_param(run_id, k, v)

    def log_round(self, record: RoundRecord) -> None:
        """Server curves ``round/...`` on the parent; each site's figures on its child."""
        import mlflow

        mlflow.log_metrics(
            {f"round/{k}": float(v) for k, v in record.summary().items()}, step=record.round
        )
        for site, figures in record.sites.items():
            run_id = self.child(site)
            for k, v in figures.items():
                self.client.log_metric(run_id, f"round/{k}", float(v), step=record.round)
        for f in record.failed:
            run_id = self.child(f["site"])
            self.client.log_metric(run_id, "round/failed", 1.0, step=record.round)

    def log_site_tests(self, evaluation: dict[str, Any]) -> None:
        """Each site's final test figures (global model, pooled calibration) on its child."""
        for site, ev in evaluation["sites"].items():
            run_id = self.child(site)
            for k, v in ev.flat_metrics("test_").items():
                if not k.endswith(("_ci_low", "_ci_high")):
                    self.client.log_metric(run_id, k, float(v))

    def close(self, status: str = "FINISHED") -> None:
        for run_id in self.child_runs.values():
            self.client.set_terminated(run_id, status)
