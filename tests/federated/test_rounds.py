"""Round-loop helpers that need no federation to check."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from skinml.federated.rounds import keep_dtypes
from skinml.federated.server_app import rounds_to_converge


def test_an_adaptive_strategys_float64_aggregate_goes_out_as_float32():
    sent = ArrayRecord(
        {"w": Array(np.ones((4, 4), np.float32)), "b": Array(np.zeros(4, np.float32))}
    )
    aggregate = ArrayRecord({k: Array(a.numpy().astype(np.float64) + 0.5) for k, a in sent.items()})
    kept = keep_dtypes(aggregate, sent)
    assert {k: a.numpy().dtype for k, a in kept.items()} == {"w": np.float32, "b": np.float32}
    assert np.allclose(kept["w"].numpy(), 1.5)
    assert sum(a.numpy().nbytes for a in kept.values()) == 80  # 20 float32 values
    assert keep_dtypes(sent, sent) is sent


def test_rounds_to_converge_is_the_first_round_near_the_best_validation_loss():
    history = [
        {"round": r, "evaluate": {"val_loss": v}}
        for r, v in enumerate([2.0, 0.999, 0.995, 0.99, 1.2], 1)
    ]
    assert rounds_to_converge(history) == 2  # 0.999 is within 1 % of the best, 0.99
    assert rounds_to_converge([]) is None


def _sent(message_id: str, node: int):
    return SimpleNamespace(metadata=SimpleNamespace(message_id=message_id, dst_node_id=node))


def _reply(to: str, src: int, error: str | None = None):
    return SimpleNamespace(
        metadata=SimpleNamespace(reply_to_message_id=to, src_node_id=src),
        has_error=lambda: error is not None,
        error=SimpleNamespace(reason=error),
    )


def test_a_reply_the_superlink_makes_for_an_offline_node_names_that_hospital():
    from skinml.federated.rounds import failures

    sites = {11: "north", 12: "south", 13: "east"}
    sent = [_sent("m11", 11), _sent("m12", 12), _sent("m13", 13)]
    replies = [
        _reply("m11", 11),
        _reply("m12", 1, "Error: Node Unavailable"),  # the SuperLink (node 1) answers for 12
    ]
    assert failures(sent, replies, sites, "train") == [
        {"site": "south", "phase": "train", "reason": "Error: Node Unavailable"},
        {
            "site": "east",
            "phase": "train",
            "reason": "no reply before the round timeout (disconnected or too slow)",
        },
    ]


def test_nodes_needed_is_what_flowers_sampling_waits_for():
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg

    from skinml.federated.rounds import nodes_needed

    fedavg = FedAvg(min_available_nodes=2, min_train_nodes=3, min_evaluate_nodes=1)
    assert nodes_needed(fedavg, "train") == 3
    assert nodes_needed(fedavg, "evaluate") == 2
    dp = DifferentialPrivacyServerSideFixedClipping(fedavg, 1.0, 1.0, 3)
    assert nodes_needed(dp, "train") == 3
    assert nodes_needed(FedAvg(fraction_evaluate=0.0, min_available_nodes=2), "evaluate") == 0


class _Grid:
    """Connected node ids as the SuperLink reports them, one list per call."""

    def __init__(self, *calls: list[int]):
        self.calls = list(calls)

    def get_node_ids(self) -> list[int]:
        return self.calls.pop(0) if len(self.calls) > 1 else self.calls[0]


def test_a_hospital_that_stays_offline_stops_the_federation_with_its_name():
    from skinml.federated.rounds import FederationError, wait_for_nodes

    sites = {11: "north", 12: "south"}
    assert wait_for_nodes(_Grid([11], [11, 12]), 2, 30, sites) == [11, 12]  # came back
    with pytest.raises(FederationError) as err:
        wait_for_nodes(_Grid([11]), 2, 0.5, sites, " for round 3 (train)")
    text = str(err.value)
    assert "1 of the 2 hospitals needed for round 3 (train) are connected" in text
    assert "not connected: south" in text and "resume=auto" in text
    assert "min_train_nodes" in text


class _AnsweringGrid(_Grid):
    """A grid whose hospitals answer with ``replies``: one per sent message id."""

    def __init__(self, replies: dict[str, object]):
        super().__init__([11, 12])
        self.replies = replies

    def send_and_receive(self, messages, timeout):
        return [self.replies[m.metadata.message_id] for m in messages]


def test_too_few_replies_stop_the_federation_with_each_hospitals_reason():
    from skinml.federated.rounds import FederationError, RoundLoop

    grid = _AnsweringGrid(
        {"m11": _reply("m11", 11, "Traceback ...\nDrillFailure: failure drill"),
         "m12": _reply("m12", 1, "Error: Node Unavailable")}
    )  # fmt: skip
    loop = RoundLoop(grid=grid, strategy=None, rounds=1, timeout=5, min_replies=1,
                     sites_by_node={11: "north", 12: "south"}, make_config=dict)  # fmt: skip
    with pytest.raises(FederationError) as err:
        loop._replies([_sent("m11", 11), _sent("m12", 12)], 1, "train")
    text = str(err.value)
    assert "round 1 (train): 0 of 2 hospitals answered" in text
    assert "fewer than federation.min_replies=1" in text
    assert "north: DrillFailure: failure drill" in text  # the last line of each reason
    assert "south: Error: Node Unavailable" in text
    assert "resume=auto" in text
    loop.min_replies = 0
    replies, failed = loop._replies([_sent("m11", 11), _sent("m12", 12)], 1, "train")
    assert [f["site"] for f in failed] == ["north", "south"] and len(replies) == 2


def test_secagg_records_which_hospital_dropped_out_and_in_which_stage(monkeypatch):
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState

    from skinml.federated.secagg import dropout_failures, recording_workflow

    # Flower's stages, reduced to what they do to the set of active nodes
    def setup(self, grid, context, state):
        state.sampled_node_ids = {11, 12, 13, 14}
        state.active_node_ids = {11, 12, 13}  # 14 never answered the key setup
        return True

    def drop(node):
        def stage(self, grid, context, state):
            state.active_node_ids = state.active_node_ids - {node}
            return True

        return stage

    monkeypatch.setattr(SecAggPlusWorkflow, "setup_stage", setup)
    monkeypatch.setattr(SecAggPlusWorkflow, "share_keys_stage", drop(None))
    monkeypatch.setattr(SecAggPlusWorkflow, "collect_masked_vectors_stage", drop(13))
    monkeypatch.setattr(SecAggPlusWorkflow, "unmask_stage", drop(12))
    workflow = recording_workflow(num_shares=1.0, reconstruction_threshold=0.5)
    state = WorkflowState()
    for stage in ("setup_stage", "share_keys_stage", "collect_masked_vectors_stage"):
        assert getattr(workflow, stage)(None, None, state)
    workflow.unmask_stage(None, None, state)
    assert workflow.dropped == {
        14: "key setup",
        13: "training and sending its masked update",
        12: "unmasking",
    }
    failed = dropout_failures(workflow.dropped, {11: "a", 12: "b", 13: "c"})
    assert [(f["site"], f["phase"]) for f in failed] == [
        ("node 14", "train"),
        ("c", "train"),
        ("b", "train"),
    ]
    assert failed[1]["reason"] == (
        "dropped out of secure aggregation during training and sending its masked update"
    )
