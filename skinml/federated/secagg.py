"""Secure aggregation (SecAgg+) rounds: the server learns only the sum of the updates.

Flower implements SecAgg+ as a workflow of its legacy (``FitIns``/``FitRes``) API
(``SecAggPlusWorkflow`` on the server, ``secaggplus_mod`` on the clients). This module
runs one such workflow per round inside skinml's round loop, so that checkpoints,
tracking, validation and the final calibration stay the same as without SecAgg+.

Hospitals send their *update* (local weights minus the global weights), not their
weights: SecAgg+ quantizes every value into ``[-clipping_range, clipping_range]``, which
an update fits and BatchNorm's running variances might not. The server adds the
securely averaged update to the global model. Aggregation is FedAvg's weighted mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: SecAgg+ normalises each hospital's weight (its training images) by this bound
MAX_WEIGHT = 100_000.0

#: The four SecAgg+ stages of Flower's workflow, in order, and what a hospital does in each
STAGES = {
    "setup_stage": "key setup",
    "share_keys_stage": "key sharing",
    "collect_masked_vectors_stage": "training and sending its masked update",
    "unmask_stage": "unmasking",
}


def recording_workflow(**kwargs: Any) -> Any:
    """Flower's ``SecAggPlusWorkflow`` that also records which hospitals dropped out, and when.

    The workflow drops a node that fails or does not answer a stage (it is then left out of
    the sum, its masks are removed from the others' shares) and only logs it. This
    subclass compares the active nodes before and after each stage; ``dropped`` maps
    node id -> stage description after the call.
    """
    from flwr.server.workflow import SecAggPlusWorkflow

    class RecordingSecAggPlus(SecAggPlusWorkflow):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.dropped: dict[int, str] = {}

        def _stage(self, name: str, grid: Any, context: Any, state: Any) -> bool:
            before = set(state.active_node_ids)
            ok = getattr(super(), name)(grid, context, state)
            if name == "setup_stage":  # the nodes asked to take part, before any answered
                before = set(state.sampled_node_ids)
            for nid in sorted(before - set(state.active_node_ids)):
                self.dropped.setdefault(nid, STAGES[name])
            return ok

        def setup_stage(self, grid: Any, context: Any, state: Any) -> bool:
            return self._stage("setup_stage", grid, context, state)

        def share_keys_stage(self, grid: Any, context: Any, state: Any) -> bool:
            return self._stage("share_keys_stage", grid, context, state)

        def collect_masked_vectors_stage(self, grid: Any, context: Any, state: Any) -> bool:
            return self._stage("collect_masked_vectors_stage", grid, context, state)

        def unmask_stage(self, grid: Any, context: Any, state: Any) -> bool:
            return self._stage("unmask_stage", grid, context, state)

    return RecordingSecAggPlus(**kwargs)


def dropout_failures(dropped: dict[int, str], sites_by_node: dict[int, str]) -> list[dict]:
    """``federation.json`` failure records for the hospitals SecAgg+ dropped."""
    from skinml.federated.rounds import failure_record

    return [
        failure_record(
            nid, "train", f"dropped out of secure aggregation during {stage}", sites_by_node
        )
        for nid, stage in dropped.items()
    ]


def legacy_config(config: Any) -> dict[str, Any]:
    """A ConfigRecord as FitIns config (scalars only: lists become comma-joined strings)."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in config.items()}


def secagg_train_step(
    grid: Any, cfg: Any, sites_by_node: dict[int, str], timeout: float
) -> Callable[..., tuple]:
    """A ``train_step`` for :class:`~skinml.federated.rounds.RoundLoop` that runs SecAgg+."""
    from flwr.app import Array, ArrayRecord, Context, RecordDict
    from flwr.app import ConfigRecord as Record
    from flwr.server import ServerConfig
    from flwr.server.compat.app_utils import start_update_client_manager_thread
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import FedAvg as LegacyFedAvg
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key

    from skinml.federated.messages import record_bytes
    from skinml.federated.rounds import FederationError

    fed = cfg.federation
    n = len(sites_by_node)
    privacy = fed.privacy

    def step(rnd: int, arrays: Any, config: Any) -> tuple:
        keys = list(arrays.keys())
        current = arrays.to_numpy_ndarrays()
        fit_config = legacy_config(config)
        strategy = LegacyFedAvg(
            fraction_fit=float(fed.strategy.fraction_train),
            fraction_evaluate=0.0,
            min_fit_clients=int(fed.strategy.min_train_nodes),
            min_available_clients=int(fed.strategy.min_available_nodes),
            on_fit_config_fn=lambda _: dict(fit_config),
        )
        context = LegacyContext(
            Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
            config=ServerConfig(num_rounds=rnd),
            strategy=strategy,
        )
        thread, stop, done = start_update_client_manager_thread(grid, context.client_manager)
        done.wait()
        try:
            context.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord(
                [np.asarray(a) for a in current]
            )
            context.state.config_records[MAIN_CONFIGS_RECORD] = Record(
                {Key.CURRENT_ROUND: rnd, Key.START_TIME: 0.0}
            )
            before = context.state.array_records[MAIN_PARAMS_RECORD]
            workflow = recording_workflow(
                num_shares=privacy.secagg_shares,
                reconstruction_threshold=privacy.secagg_threshold,
                max_weight=MAX_WEIGHT,
                timeout=timeout,
            )
            workflow(grid, context)
        finally:
            stop.set()
            thread.join()
        failed = dropout_failures(workflow.dropped, sites_by_node)
        after = context.state.array_records[MAIN_PARAMS_RECORD]
        if after is before:
            named = "; ".join(f"{f['site']} ({f['reason']})" for f in failed) or "none named"
            raise FederationError(
                f"round {rnd}: secure aggregation halted (too few hospitals completed "
                f"the SecAgg+ stages; dropped: {named})",
                fix="see the server log; lower federation.privacy.secagg_threshold or bring "
                "the failed nodes back and resume (resume=auto)",
            )
        delta = after.to_numpy_ndarrays()
        new = ArrayRecord(
            {
                k: Array((np.asarray(c) + np.asarray(d, dtype=np.float64)).astype(c.dtype))
                for k, c, d in zip(keys, current, delta, strict=True)
            }
        )
        history = context.history.metrics_distributed_fit
        train = {k: float(v[-1][1]) for k, v in history.items() if v}
        size = record_bytes(arrays)
        for f in failed:
            log.warning("round %d: %s %s", rnd, f["site"], f["reason"])
        return new, train, {}, failed, size * n, size * n

    return step


def legacy_train_reply(msg: Any, train: Callable[[dict, dict], tuple]) -> Any:
    """Answer a SecAgg+ ``FitIns`` message: ``train(state arrays, config)`` ->
    ``(update arrays, num_examples, metrics)``, sent back as a ``FitRes``."""
    import flwr.compat.common.recorddict_compat as compat
    from flwr.app import Message
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    update, num_examples, metrics = train(parameters_to_ndarrays(fitins.parameters), fitins.config)
    res = FitRes(
        status=Status(code=Code.OK, message="ok"),
        parameters=ndarrays_to_parameters(update),
        num_examples=int(num_examples),
        metrics=metrics,
    )
    return Message(compat.fitres_to_recorddict(res, keep_input=True), reply_to=msg)


def is_legacy_train(msg: Any) -> bool:
    """Whether a train message uses the legacy ``FitIns`` layout (SecAgg+)."""
    return "fitins.parameters" in msg.content.array_records
