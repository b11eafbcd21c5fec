"""The hospital's Flower ClientApp: describe the site, train locally, validate, predict.

The server sends the training settings (the ``data``, ``model``, ``augmentation``,
``optim``, ``scheduler`` and ``trainer`` parts of the run's config) in every message; where
the images are is the hospital's own business:

- deployment: ``flower-supernode --node-config "manifest='/data/manifest.csv' site='x'"``,
  a manifest on the hospital's machine (``site`` picks its rows when the file has several);
- simulation: client ``partition-id`` takes the ``partition-id``-th site of the run's data.

Every reply carries only what :mod:`skinml.federated.messages` lists.
"""

from __future__ import annotations

import logging
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from skinml.federated.messages import (
    ARRAYS,
    CONFIG,
    DESCRIBE,
    METRICS,
    NUM_EXAMPLES,
    PREDICT,
    SITE,
    UNIT_WEIGHT,
    arrays_to_state,
    predictions_record,
    state_to_arrays,
)

log = logging.getLogger(__name__)

#: ConfigRecord keys the server sets
SKINML_CONFIG = "skinml-config"
SIMULATION_SITES = "simulation-sites"
SITE_COLUMN = "site-column"
CLASS_COUNTS = "class-counts"
_SOURCES: dict[str, Any] = {}


class DrillFailure(RuntimeError):
    """The failure rehearsal (``federation.drill``) stopping this site's round on purpose."""


def client_config(config: Any) -> Any:
    """The run's settings as sent by the server (an OmegaConf node)."""
    from omegaconf import OmegaConf

    return OmegaConf.create(str(config[SKINML_CONFIG]))


def _site_data(config: Any, context: Context, cfg: Any):
    from skinml.data.manifest import read_manifest
    from skinml.federated.local import load_site

    node = context.node_config
    column = str(config.get(SITE_COLUMN, "site"))
    if "manifest" in node:  # a hospital's own node
        manifest = read_manifest(str(node["manifest"]))
        site = str(node.get("site", manifest.name))
        if column in manifest.frame.columns and "site" not in node:
            values = manifest.frame[column].dropna().unique()
            site = str(values[0]) if len(values) == 1 else site
        return load_site(cfg, manifest, site, column)
    sites = config[SIMULATION_SITES]
    sites = sites.split(",") if isinstance(sites, str) else list(sites)
    site = sites[int(node["partition-id"])]
    return load_site(cfg, _source(cfg), site, column)


def _source(cfg: Any):
    """The simulation's whole manifest, loaded once per process."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from skinml.training.data_setup import as_manifest

    key = OmegaConf.to_yaml(cfg.data.source)
    if key not in _SOURCES:
        _SOURCES[key] = as_manifest(instantiate(cfg.data.source))
    return _SOURCES[key]


def _global_model_here(msg: Message, context: Context) -> tuple[Any, Any, dict]:
    """(config, this site's data, the server's global weights as a state dict) for a query."""
    from skinml.federated.local import build_model

    config = msg.content[CONFIG]
    cfg = client_config(config)
    data = _site_data(config, context, cfg)
    template = build_model(cfg, len(data.classes)).state_dict()
    return cfg, data, arrays_to_state(msg.content[ARRAYS], template)


def _reply(msg: Message, records: dict[str, Any], site: str) -> Message:
    return Message(RecordDict({**records, SITE: ConfigRecord({"site": site})}), reply_to=msg)


def _class_counts(config: Any) -> list[int] | None:
    """The federation's training images per class, if the server sent them."""
    value = config.get(CLASS_COUNTS)
    if value is None or value == "":
        return None
    items = value.split(",") if isinstance(value, str) else value
    return [int(v) for v in items]


def _drill(cfg: Any, site: str, server_round: int) -> None:
    drill = cfg.get("drill") or {}
    if drill.get("fail_site") == site and int(drill.get("fail_round") or 0) == server_round:
        raise DrillFailure(f"failure drill: site {site!r} stops in round {server_round}")


def make_client_app(mods: list | None = None) -> ClientApp:
    """A ClientApp for one hospital (``mods``: Flower client mods, e.g. SecAgg+)."""
    app = ClientApp(mods=mods or [])

    @app.query(DESCRIBE)
    def describe(msg: Message, context: Context) -> Message:
        """Counts per split and class, the fingerprint and how images are clustered."""
        config = msg.content[CONFIG]
        cfg = client_config(config)
        data = _site_data(config, context, cfg)
        counts = {
            f"{split}/{cls}": n
            for split, by_class in data.counts.counts.items()
            for cls, n in by_class.items()
        }
        info = ConfigRecord(
            {"site": data.site, "fingerprint": data.fingerprint, "cluster-unit": data.cluster_unit}
        )
        return _reply(msg, {"counts": MetricRecord(counts), "info": info}, data.site)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        """Local epochs from the global weights; the new weights and a few figures go back."""
        from skinml.federated.local import build_model, train_local
        from skinml.federated.secagg import is_legacy_train, legacy_train_reply

        if is_legacy_train(msg):  # SecAgg+: FitIns in, the update (not the weights) out
            return legacy_train_reply(
                msg, lambda arrays, config: _secagg_train(arrays, config, context)
            )
        config = msg.content[CONFIG]
        cfg = client_config(config)
        data = _site_data(config, context, cfg)
        server_round = int(config.get("server-round", 0))
        _drill(cfg, data.site, server_round)
        template = build_model(cfg, len(data.classes)).state_dict()
        state = arrays_to_state(msg.content[ARRAYS], template)
        new_state, figures = train_local(
            data,
            cfg,
            state,
            server_round=server_round,
            epochs=int(config.get("local-epochs", 1)),
            proximal_mu=float(config.get("proximal-mu", 0.0)),
            class_counts=_class_counts(config),
        )
        metrics = MetricRecord(
            {NUM_EXAMPLES: len(data.targets["train"]), UNIT_WEIGHT: 1, **figures}
        )
        return _reply(msg, {ARRAYS: state_to_arrays(new_state), METRICS: metrics}, data.site)

    def _secagg_train(arrays: list, config: dict, context: Context) -> tuple:
        import numpy as np
        import torch

        from skinml.federated.local import build_model, train_local
        from skinml.federated.messages import exchanged_keys

        cfg = client_config(config)
        data = _site_data(config, context, cfg)
        server_round = int(config.get("server-round", 0))
        _drill(cfg, data.site, server_round)
        template = build_model(cfg, len(data.classes)).state_dict()
        keys = exchanged_keys(template)
        state = dict(template)
        for k, a in zip(keys, arrays, strict=True):
            state[k] = torch.as_tensor(np.asarray(a)).to(template[k].dtype)
        new_state, figures = train_local(
            data,
            cfg,
            state,
            server_round=server_round,
            epochs=int(config.get("local-epochs", 1)),
            class_counts=_class_counts(config),
        )
        update = [
            (new_state[k].double() - state[k].double()).numpy().astype("float32") for k in keys
        ]
        return update, len(data.targets["train"]), figures

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        """The global model on this site's validation images: loss and accuracies."""
        import numpy as np
        import torch

        from skinml.federated.local import predict
        from skinml.training.run_evaluation import validation_metrics

        cfg, data, state = _global_model_here(msg, context)
        logits = predict(data, cfg, state, "val")
        targets = data.targets["val"]
        loss = float(
            torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets))
        )
        found = validation_metrics(data.classes)(logits, targets)
        metrics = {
            NUM_EXAMPLES: len(targets),
            UNIT_WEIGHT: 1,
            "val_loss": loss,
            "val_accuracy": found["val_accuracy"],
            "val_balanced_accuracy": found["val_balanced_accuracy"],
            "val_classes_present": len(np.unique(targets)),
        }
        return _reply(msg, {METRICS: MetricRecord(metrics)}, data.site)

    @app.query(PREDICT)
    def predict_splits(msg: Message, context: Context) -> Message:
        """The final model's logits on validation and test, for pooled calibration."""
        from skinml.federated.local import predict

        cfg, data, state = _global_model_here(msg, context)
        logits = {s: predict(data, cfg, state, s) for s in ("val", "test")}
        return _reply(msg, {"predictions": predictions_record(data, logits)}, data.site)

    return app


def _secagg_app() -> ClientApp:
    from flwr.client.mod import secaggplus_mod

    return make_client_app([secaggplus_mod])


#: what ``flower-supernode`` loads (``skinml.federated.client_app:app``)
app = make_client_app()
#: the same with Flower's SecAgg+ client mod (``federation.privacy.secagg=true``)
app_secagg = _secagg_app()
