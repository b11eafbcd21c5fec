"""Round-loop helpers that need no federation to check."""

from __future__ import annotations

import numpy as np
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
