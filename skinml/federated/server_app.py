"""The federation's Flower ServerApp: check the sites, run the rounds, finish a skinml model.

:func:`federate` is the whole server side, in order: wait for the hospitals, ask each to
describe its data and refuse the run before round 1 if a site cannot take part, build the
strategy, run (or resume) the rounds with MLflow tracking and a checkpoint per round,
gather validation/test predictions, calibrate, evaluate per site and pooled, write the
bundle and export the ONNX model file. ``skinml-federate`` composes the config; in a
deployment the SuperLink starts this app with the resolved config in its run config.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from skinml.federated.client_app import (
    CLASS_COUNTS,
    SIMULATION_SITES,
    SITE_COLUMN,
    SKINML_CONFIG,
)
from skinml.federated.messages import CONFIG, DESCRIBE, PREDICT, SITE, state_to_arrays
from skinml.federated.rounds import (
    CHECKPOINT,
    FederationError,
    RoundLoop,
    failures,
    wait_for_nodes,
)

log = logging.getLogger(__name__)

#: the parts of the config a hospital needs (never tracking URIs or server paths)
CLIENT_KEYS = ("seed", "data", "model", "augmentation", "optim", "scheduler", "trainer")
OUTCOME = "federation.json"


def client_yaml(cfg: Any) -> str:
    """The settings sent to every hospital, resolved, as YAML."""
    from omegaconf import OmegaConf

    part = {k: OmegaConf.to_container(cfg[k], resolve=True) if k != "seed" else cfg[k]
            for k in CLIENT_KEYS}  # fmt: skip
    part["drill"] = OmegaConf.to_container(cfg.federation.drill, resolve=True)
    return OmegaConf.to_yaml(OmegaConf.create(part))


def ask_all(
    grid: Grid,
    nodes: list[int],
    action: str,
    content: RecordDict,
    timeout: float,
    sites_by_node: dict[int, str] | None = None,
):
    """Send one query to every node; returns ``(replies, failed)``, failures named by site."""
    messages = [
        Message(content=content, message_type=f"query.{action}", dst_node_id=n) for n in nodes
    ]
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    return replies, failures(messages, replies, sites_by_node or {}, action)


def describe_sites(grid: Grid, nodes: list[int], config: ConfigRecord, cfg: Any, timeout: float):
    """Every hospital's counts, before round 1; refuses the run when a site cannot take part.

    Returns:
        ``(sites_by_node, counts, fingerprints, cluster unit, warnings)``.
    """
    from skinml.federated.sites import SiteCounts, check_sites

    replies, failed = ask_all(grid, nodes, DESCRIBE, RecordDict({CONFIG: config}), timeout)
    if failed:
        raise FederationError(
            "before round 1, hospitals could not read their data: "
            + "; ".join(f"{f['site']}: {_last_line(f['reason'])}" for f in failed),
            fix="fix the data at those hospitals (the node log has the details) and restart",
        )
    sites_by_node, counts, prints, units = {}, [], {}, set()
    for r in replies:
        info = r.content["info"]
        site = str(info["site"])
        if site in prints:
            raise FederationError(
                f"two nodes both say they are site {site!r}",
                fix="give every flower-supernode its own site in --node-config",
            )
        sites_by_node[r.metadata.src_node_id] = site
        prints[site] = str(info["fingerprint"])
        units.add(str(info["cluster-unit"]))
        by_split: dict[str, dict[str, int]] = {}
        for key, n in r.content["counts"].items():
            split, cls = key.split("/", 1)
            by_split.setdefault(split, {})[cls] = int(n)
        counts.append(SiteCounts(site, by_split))
    warnings = check_sites(sorted(counts, key=lambda c: c.site), cfg.federation.checks)
    unit = "patients" if units == {"patients"} else "lesions"
    return sites_by_node, counts, prints, unit, warnings


def _last_line(text: str) -> str:
    lines = [x for x in str(text).splitlines() if x.strip()]
    return lines[-1] if lines else str(text)


def federate(grid: Grid, cfg: Any, run_dir: Path, sites: list[str] | None = None) -> dict:
    """Run the federation on ``grid``; returns (and writes) ``federation.json``'s document."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from skinml.federated.local import build_model
    from skinml.federated.strategies import (
        build_strategy,
        from_plain,
        privacy_spent,
        restore_strategy,
        strategy_state,
        to_plain,
    )
    from skinml.federated.tracking import FederationTracker
    from skinml.training.seeding import seed_everything

    run_dir = Path(run_dir)
    state_dir = run_dir / "federation"
    state_dir.mkdir(parents=True, exist_ok=True)
    fed = cfg.federation
    timeout = float(fed.round_timeout_s)
    yaml_text = client_yaml(cfg)

    class_counts: list[int] = []

    def make_config(rnd: int) -> ConfigRecord:
        return ConfigRecord(
            {
                SKINML_CONFIG: yaml_text,
                "local-epochs": int(fed.local_epochs),
                SIMULATION_SITES: list(sites or []),
                SITE_COLUMN: str(fed.site_column),
                CLASS_COUNTS: list(class_counts),
                "server-round": rnd,
            }
        )

    needed = len(sites) if sites else int(fed.strategy.min_available_nodes)
    nodes = wait_for_nodes(grid, needed, float(fed.node_timeout_s), when=" before round 1")
    sites_by_node, counts, prints, unit, warnings = describe_sites(
        grid, nodes, make_config(0), cfg, timeout
    )
    for w in warnings:
        log.warning("%s", w)
    strategy = build_strategy(fed, len(sites_by_node))
    classes = [str(c) for c in cfg.data.classes]
    if str(fed.class_balance) == "federation":
        class_counts[:] = [sum(c.counts["train"].get(k, 0) for c in counts) for k in classes]
    seed_everything(int(cfg.seed))
    model = build_model(cfg, len(classes))
    arrays = state_to_arrays(model.state_dict())
    history: list[dict] = []
    best: dict[str, Any] = {"round": 0, "score": float("-inf"), "arrays": None}
    start, parent_run, child_runs = 1, None, {}
    checkpoint = _resume_path(cfg.get("resume"), state_dir)
    if checkpoint is not None:
        from skinml.federated.rounds import load_state

        saved = load_state(checkpoint)
        arrays, history = from_plain(saved["arrays"]), saved["history"]
        best = {**saved["best"], "arrays": from_plain(saved["best"]["arrays"])}
        strategy = restore_strategy(strategy, saved["strategy"])
        start, parent_run, child_runs = saved["round"] + 1, saved["run_id"], saved["child_runs"]
        log.info("resuming after round %d from %s", saved["round"], checkpoint)
    tracker = instantiate(cfg.tracking)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    name = cfg.tracking.get("run_name") or (
        f"federated-{cfg.data.name}-{cfg.model.name}-{type(strategy).__name__}-seed{cfg.seed}"
    )
    with tracker.start(run_name=name, run_id=parent_run) as trk:
        fed_trk = FederationTracker(trk, child_runs)
        if parent_run is None:
            trk.log_params(resolved)
            trk.set_tags(
                {
                    "task": "federated_image_classification",
                    "strategy": type(strategy).__name__,
                    "sites": ",".join(sorted(prints)),
                    "run_dir": str(run_dir),
                }
            )
            fed_trk.log_sites(counts)
        else:
            trk.set_tags({"resumed_from": str(checkpoint)})

        monitor = str(cfg.trainer.monitor)

        def on_round_end(record, new_arrays):
            history.append(_record_dict(record))
            score = record.evaluate.get(monitor, -record.evaluate.get("val_loss", 0.0))
            if score > best["score"]:
                best.update(round=record.round, score=float(score), arrays=new_arrays)
            fed_trk.log_round(record)
            from skinml.federated.rounds import save_state

            save_state(
                state_dir / CHECKPOINT,
                {
                    "round": record.round,
                    "arrays": to_plain(new_arrays),
                    "strategy": strategy_state(strategy),
                    "history": history,
                    "run_id": trk.run_id,
                    "child_runs": fed_trk.child_runs,
                    "best": {**best, "arrays": to_plain(best["arrays"])},
                },
            )

        train_step = None
        if fed.privacy.secagg:
            from skinml.federated.secagg import secagg_train_step

            train_step = secagg_train_step(grid, cfg, sites_by_node, timeout)
        loop = RoundLoop(
            grid=grid,
            strategy=strategy,
            rounds=int(fed.rounds),
            timeout=timeout,
            min_replies=int(fed.min_replies),
            sites_by_node=sites_by_node,
            make_config=make_config,
            node_timeout=float(fed.node_timeout_s),
            train_step=train_step,
            on_round_end=on_round_end,
        )
        arrays = loop.run(arrays, start=start)
        if str(fed.select) == "best" and best["arrays"] is not None:
            arrays = best["arrays"]
            log.info("selected round %d (%s = %.4f)", best["round"], monitor, best["score"])
        selected = best["round"] if str(fed.select) == "best" else int(fed.rounds)
        trk.log_metrics({"selected_round": float(selected)})
        state = arrays.to_torch_state_dict()
        full = dict(model.state_dict())
        full.update({k: v.to(full[k].dtype) for k, v in state.items()})
        model.load_state_dict(full)
        content = RecordDict({CONFIG: make_config(int(fed.rounds)), "arrays": arrays})
        replies, failed = ask_all(
            grid, sorted(sites_by_node), PREDICT, content, timeout, sites_by_node
        )
        predictions = {
            str(r.content[SITE]["site"]): {
                k: v.numpy() for k, v in r.content["predictions"].items()
            }
            for r in replies
            if not r.has_error()
        }
        if not predictions:
            raise FederationError(
                "no hospital returned the final model's predictions, so it cannot be calibrated",
                fix="see the failures in federation.json; resume=auto reruns the last step",
            )
        privacy = privacy_spent(strategy)
        outcome = _finish(
            cfg, trk, fed_trk, model, predictions, prints, unit, run_dir, history, privacy,
            failed, warnings, selected,
        )  # fmt: skip
        fed_trk.close()
    return outcome


def _resume_path(resume: Any, state_dir: Path) -> Path | None:
    from skinml.errors import ConfigError

    if not resume:
        return None
    path = state_dir / CHECKPOINT if resume == "auto" else Path(str(resume))
    if path.is_dir():
        path = path / "federation" / CHECKPOINT
    if path.is_file():
        return path
    if resume == "auto":
        log.info("resume=auto: no round finished yet at %s; starting at round 1", path)
        return None
    raise ConfigError(
        "resume checkpoint does not exist",
        file=path,
        fix="pass resume=auto with hydra.run.dir=<the interrupted run dir>",
    )


def _record_dict(record: Any) -> dict:
    return {
        "round": record.round,
        "train": record.train,
        "evaluate": record.evaluate,
        "sites": record.sites,
        "failed": record.failed,
        "bytes_to_clients": record.bytes_to_clients,
        "bytes_from_clients": record.bytes_from_clients,
        "seconds": record.seconds,
    }


def rounds_to_converge(history: list[dict], key: str = "val_loss", tol: float = 0.01) -> int | None:
    """The first round whose pooled validation loss is within ``tol`` (relative) of the best."""
    values = [(h["round"], h["evaluate"].get(key)) for h in history if key in h["evaluate"]]
    if not values:
        return None
    best = min(v for _, v in values)
    return next(r for r, v in values if v <= best * (1 + tol))


def _finish(cfg, trk, fed_trk, model, predictions, prints, unit, run_dir, history, privacy,
            failed, site_warnings, selected) -> dict:  # fmt: skip
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from skinml import __version__
    from skinml.federated.finish import (
        calibrate_and_evaluate,
        federation_fingerprint,
        verification_manifest,
        write_evaluation,
    )
    from skinml.federated.local import preprocessing
    from skinml.tracking.provenance import git_commit, package_versions, utc_now
    from skinml.training.bundle import BUNDLE_FILE, bundle_from_run
    from skinml.training.run_evaluation import CI_SUFFIXES
    from skinml.vocabulary import LabelSpace

    classes = [str(c) for c in cfg.data.classes]
    named, _ = LabelSpace(classes, name="data.classes").mapping(list(cfg.data.malignant))
    malignant = [named[m] for m in cfg.data.malignant]
    evaluation = calibrate_and_evaluate(
        predictions, classes, malignant, cfg.evaluation, seed=int(cfg.seed), group_unit=unit
    )
    for path in write_evaluation(evaluation, classes, run_dir):
        trk.log_artifact(path, "evaluation" if path.suffix != ".png" else "plots")
    trk.log_metrics({k: v for k, v in evaluation["flat"].items() if not k.endswith(CI_SUFFIXES)})
    fed_trk.log_site_tests(evaluation)
    pooled_manifest = run_dir / "split_manifest.csv"
    data = SimpleNamespace(
        classes=classes,
        malignant=malignant,
        fingerprint=federation_fingerprint(prints),
        manifest=SimpleNamespace(name=f"federated:{cfg.data.name}"),
        split_manifest_path=pooled_manifest,
    )
    prep = preprocessing(cfg, model)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    training = {
        "rounds": int(cfg.federation.rounds),
        "local_epochs": int(cfg.federation.local_epochs),
        "strategy": str(cfg.federation.strategy._target_),
        "sites": sorted(prints),
        "selected_round": int(selected),
        "selection": f"global model of round {selected} "
        + (
            "(best federated validation " + str(cfg.trainer.monitor) + ")"
            if str(cfg.federation.select) == "best"
            else "(the last round)"
        ),
    }
    bundle = bundle_from_run(
        cfg, model.cpu().eval(), prep, data, evaluation, trk.run_id, __version__, git_commit(),
        package_versions(), utc_now(), resolved,
    )  # fmt: skip
    bundle.metadata.extra["federated_training"] = training
    bundle.metadata.extra["federation"] = {
        "site_fingerprints": prints,
        "privacy": privacy,
        "calibration": "temperature and threshold fitted on pooled validation predictions",
    }
    bundle_path = bundle.save(run_dir / BUNDLE_FILE)
    trk.log_artifact(bundle_path, "bundle")
    onnx_path = None
    if cfg.export.enabled:
        from skinml.export import export_bundle

        verify = verification_manifest(
            cfg, run_dir, pooled_manifest if pooled_manifest.is_file() else None
        )
        result = export_bundle(
            bundle,
            run_dir / "model.onnx",
            quantize=cfg.export.quantize,
            max_accuracy_loss=cfg.export.max_accuracy_loss,
            validation_manifest=verify,
            mlflow_run_id=trk.run_id,
        )
        onnx_path = result.onnx_path
        for p in (result.onnx_path, result.sidecar_path, result.card_path):
            trk.log_artifact(p, "export")
    if privacy is not None:
        trk.log_metrics({"dp_epsilon": privacy["epsilon"], "dp_delta": privacy["delta"]})
    all_failed = [f for h in history for f in h["failed"]] + failed
    outcome = {
        "run_dir": str(run_dir),
        "mlflow_run_id": trk.run_id,
        "tracking_uri": trk.tracking_uri,
        "strategy": str(cfg.federation.strategy._target_),
        "sites": sorted(prints),
        "rounds": history,
        "rounds_to_converge": rounds_to_converge(history),
        "selected_round": int(selected),
        "class_balance": str(cfg.federation.class_balance),
        "bytes_per_round": [h["bytes_to_clients"] + h["bytes_from_clients"] for h in history],
        "failed": all_failed,
        "privacy": privacy,
        "site_warnings": site_warnings,
        "metrics": {k: v for k, v in evaluation["flat"].items()},
        "per_site_test": {
            s: {k: v for k, v in ev.flat_metrics("test_").items()}
            for s, ev in evaluation["sites"].items()
        },
        "bundle": str(bundle_path),
        "onnx": None if onnx_path is None else str(onnx_path),
        "warnings": list(evaluation["warnings"]),
    }
    (run_dir / OUTCOME).write_text(json.dumps(outcome, indent=2, default=str), encoding="utf-8")
    trk.log_artifact(run_dir / OUTCOME)
    return outcome


def make_server_app(cfg: Any = None, run_dir: Any = None, sites: list[str] | None = None,
                    errors: list | None = None) -> ServerApp:  # fmt: skip
    """A ServerApp for one federation.

    With ``cfg`` (simulation) the app runs that config; without it (deployment) the config
    and the run directory come from the run config ``skinml-config`` / ``run-dir`` that
    ``skinml-federate`` put in the Flower app it submitted. ``errors`` collects an exception
    that ends the run, for the caller to raise (Flower's runtime only logs it).
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            if cfg is not None:
                federate(grid, cfg, Path(run_dir), sites)
                return
            from omegaconf import OmegaConf

            run_cfg = OmegaConf.create(str(context.run_config["skinml-config"]))
            target = Path(str(context.run_config["run-dir"]))
            listed = [s for s in str(context.run_config.get("sites", "")).split(",") if s]
            federate(grid, run_cfg, target, listed or None)
        except Exception as exc:
            if errors is not None:
                errors.append(exc)
            target_dir = Path(run_dir) if run_dir is not None else None
            if target_dir is None and "run-dir" in context.run_config:
                target_dir = Path(str(context.run_config["run-dir"]))
            if target_dir is not None:
                target_dir.mkdir(parents=True, exist_ok=True)
                (target_dir / "federation_error.txt").write_text(
                    f"{type(exc).__name__}: {exc}", encoding="utf-8"
                )
            raise

    return app


#: what the SuperLink loads in a deployment (``skinml.federated.server_app:app``)
app = make_server_app()
