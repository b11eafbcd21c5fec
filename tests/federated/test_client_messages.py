"""What leaves a hospital: the client app's replies are inspected byte by byte.

The client app is called directly, as a SuperNode would call it, with the hospital's own
manifest in its node config; every reply is serialized as Flower sends it and searched for
the hospital's file names, patient and lesion identifiers, and bytes of its images (the
files' own bytes and the decoded pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from skinml.federated.messages import audit_content, content_bytes, state_to_arrays
from skinml.federated.server_app import client_yaml
from tests.federated.conftest import compose_federate, federate_overrides


@pytest.fixture(scope="module")
def hospital(two_sites, tmp_path_factory):
    """Hospital A's own manifest (its rows only), as it would hold it."""
    tmp = tmp_path_factory.mktemp("hospital")
    frame = pd.read_csv(two_sites)
    own = frame[frame["site"] == "hospital_a"].copy()
    own["image"] = [str(two_sites.parent / p) for p in own["image"]]
    path = tmp / "hospital_a.csv"
    own.to_csv(path, index=False)
    cfg = compose_federate(federate_overrides(two_sites, tmp))
    return path, own, cfg


@pytest.fixture
def as_server(monkeypatch):
    """Messages are built as in a ServerApp process (Flower stamps them with its run)."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


def _ask(app, context, message_type: str, cfg, arrays=None) -> Message:
    config = ConfigRecord({"skinml-config": client_yaml(cfg), "server-round": 1,
                           "local-epochs": 1})  # fmt: skip
    records = {"config": config}
    if arrays is not None:
        records["arrays"] = arrays
    msg = Message(RecordDict(records), dst_node_id=7, message_type=message_type)
    return app(msg, context)


def test_replies_carry_no_file_names_identifiers_or_image_bytes(hospital, as_server):
    from skinml.data.manifest import read_manifest
    from skinml.data.torch_dataset import load_resized_images
    from skinml.federated.client_app import make_client_app
    from skinml.federated.local import build_model, preprocessing

    path, own, cfg = hospital
    app = make_client_app()
    context = Context(
        run_id=1,
        node_id=7,
        node_config={"manifest": str(path), "site": "hospital_a"},
        state=RecordDict(),
        run_config={},
    )
    model = build_model(cfg, 2)
    arrays = state_to_arrays(model.state_dict())
    replies = {
        "describe": _ask(app, context, "query.describe", cfg),
        "train": _ask(app, context, "train", cfg, arrays),
        "evaluate": _ask(app, context, "evaluate", cfg, arrays),
        "predict": _ask(app, context, "query.predict", cfg, arrays),
    }
    for name, reply in replies.items():
        assert not reply.has_error(), (name, reply.error)

    forbidden: list = []
    for image in own["image"]:
        forbidden += [image, image.rsplit("/", 1)[-1], image.rsplit("/", 1)[-1].rsplit(".", 1)[0]]
        raw = Path(image).read_bytes()
        forbidden += [raw[len(raw) // 2 : len(raw) // 2 + 24]]  # inside the compressed pixels
    forbidden += [str(v) for v in own["patient_id"]] + [str(v) for v in own["lesion_id"]]
    forbidden += [str(path), path.name]
    prep = preprocessing(cfg, model)
    pixels = load_resized_images(read_manifest(path), prep, progress=False)
    forbidden += [row.tobytes()[:48] for row in pixels[:, 16]]  # decoded, resized pixels
    for name, reply in replies.items():
        assert audit_content(reply.content, forbidden) == [], name

    # what is there: the site's name, counts, a fingerprint, weights and numbers
    described = replies["describe"].content
    assert described["info"]["site"] == "hospital_a"
    assert len(str(described["info"]["fingerprint"])) == 64
    assert sum(described["counts"].values()) == len(own)
    trained = replies["train"].content
    assert set(trained["arrays"].keys()) == set(arrays.keys())
    assert (
        trained["metrics"]["num-examples"]
        == described["counts"]["train/mel"] + described["counts"]["train/nv"]
    )
    predictions = replies["predict"].content["predictions"]
    clusters = predictions["test_clusters"].numpy()
    assert clusters.min() >= 0 and clusters.max() < len(own)  # numbers, not identifiers
    assert set(predictions.keys()) == {
        f"{s}_{k}" for s in ("val", "test") for k in ("logits", "targets", "clusters")
    }
    # the audit itself finds a file name when one is there
    leaky = RecordDict({"config": ConfigRecord({"note": own["image"].iloc[0]})})
    assert audit_content(leaky, forbidden) != []
    assert len(content_bytes(replies["train"].content)) > np.prod(
        [*next(iter(arrays.values())).shape]
    )
    assert isinstance(trained["arrays"], ArrayRecord)
