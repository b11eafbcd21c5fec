"""What travels between a hospital and the server, and a check of what leaves a hospital.

A hospital sends: model arrays (the weights after its local epochs), a few numbers
(image counts, loss, accuracy), its site name, its data fingerprint (a SHA-256, from which
nothing can be read back) and, once at the end, the global model's logits on its
validation and test images with their true classes and an anonymous cluster number per
image (0, 1, 2, ... within the site: which images share a patient, never who). Never
image bytes, file names, lesion or patient identifiers, ages or sexes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

#: reply record keys (Flower strategies expect ``arrays`` and ``metrics``)
ARRAYS = "arrays"
METRICS = "metrics"
SITE = "site"
CONFIG = "config"
#: the weight FedAvg averages by, and a constant weight for DP's unweighted mean
NUM_EXAMPLES = "num-examples"
UNIT_WEIGHT = "unit-weight"
#: query actions of the client app
DESCRIBE = "describe"
PREDICT = "predict"


def exchanged_keys(state: dict[str, Any]) -> list[str]:
    """The state-dict entries that are averaged: everything but BatchNorm's batch counters."""
    return [k for k in state if not k.endswith("num_batches_tracked")]


def state_to_arrays(state: dict[str, Any]) -> Any:
    """A torch state dict as a Flower ``ArrayRecord`` (float tensors only)."""
    from flwr.app import ArrayRecord

    return ArrayRecord({k: state[k].detach().cpu() for k in exchanged_keys(state)})


def arrays_to_state(arrays: Any, template: dict[str, Any]) -> dict[str, Any]:
    """An ``ArrayRecord`` back into a full state dict shaped like ``template``."""
    received = arrays.to_torch_state_dict()
    state = dict(template)
    for k, v in received.items():
        state[k] = v.to(template[k].dtype) if k in template else v
    missing = [k for k in exchanged_keys(template) if k not in received]
    if missing:
        raise ValueError(f"the global model lacks {len(missing)} arrays, e.g. {missing[:3]}")
    return state


def record_bytes(record: Any) -> int:
    """Bytes of the arrays in an ``ArrayRecord`` (what a model update costs on the wire)."""
    return int(sum(len(a.data) for a in record.values()))


def predictions_record(data: Any, logits: dict[str, np.ndarray]) -> Any:
    """A site's predictions as arrays: logits, true class and cluster number per image."""
    from flwr.app import Array, ArrayRecord

    out = {}
    for split, values in logits.items():
        out[f"{split}_logits"] = Array(np.ascontiguousarray(values, dtype=np.float32))
        out[f"{split}_targets"] = Array(np.asarray(data.targets[split], dtype=np.int64))
        out[f"{split}_clusters"] = Array(np.asarray(data.clusters[split], dtype=np.int64))
    return ArrayRecord(out)


def content_bytes(content: Any) -> bytes:
    """Everything a message carries, as the bytes that go on the wire (for audits)."""
    from flwr.common.serde import recorddict_to_proto

    return recorddict_to_proto(content).SerializeToString()


def audit_content(content: Any, forbidden: Iterable[str | bytes]) -> list[str]:
    """The forbidden strings or byte runs found in a message's serialized content.

    Used to show what leaves a hospital: pass its file names, identifiers and the first
    bytes of every image file; an empty list means none of them is in the message.
    """
    wire = content_bytes(content)
    found = []
    for item in forbidden:
        needle = item.encode() if isinstance(item, str) else bytes(item)
        if needle and needle in wire:
            found.append(item if isinstance(item, str) else repr(item[:16]))
    return found
